"""Consultation requests for the clinic's staff, on the command line.

    python -m clinic_assistant requests list [--status new|delivered|contacted] [--json]
    python -m clinic_assistant requests show CR-7K3P [--json]
    python -m clinic_assistant requests mark-contacted CR-7K3P
    python -m clinic_assistant requests retry [CR-7K3P]

Contact data is shown to staff on stdout only; nothing here logs it.
"""

import argparse
import json
import sys
from dataclasses import asdict
from datetime import datetime, timezone
from typing import Callable, Dict, List, Optional

from sqlalchemy.engine import Engine

from clinic_assistant import settings
from clinic_assistant.store.consultations import (
    RequestNotFound,
    StoredRequest,
    get_request,
    list_requests,
    mark_contacted,
    retry_delivery,
)
from clinic_assistant.store.db import StoreUnavailable, engine_for

STATUSES = ("new", "delivered", "contacted")
Command = Callable[[Engine, argparse.Namespace], None]


def add_commands(parser: argparse.ArgumentParser) -> None:
    """Add ``list``, ``show``, ``mark-contacted`` and ``retry`` under ``parser``."""
    commands = parser.add_subparsers(dest="requests_command", required=True)
    listing = commands.add_parser("list", help="Consultation requests, newest first")
    listing.add_argument("--status", choices=STATUSES, help="only the requests with this status")
    listing.add_argument("--json", action="store_true", help="a JSON array instead of a table")
    listing.set_defaults(func=_on_database(list_command))
    show = commands.add_parser("show", help="Everything about one request")
    show.add_argument("reference", type=_reference)
    show.add_argument("--json", action="store_true", help="a JSON object instead of text")
    show.set_defaults(func=_on_database(show_command))
    contacted = commands.add_parser("mark-contacted", help="Record that staff contacted the visitor")
    contacted.add_argument("reference", type=_reference)
    contacted.set_defaults(func=_on_database(mark_contacted_command))
    retry = commands.add_parser("retry", help="Make undelivered requests (or one of them) due for delivery now")
    retry.add_argument("reference", type=_reference, nargs="?")
    retry.set_defaults(func=_on_database(retry_command))


def _reference(text: str) -> str:
    return text.strip().upper()  # references are shown upper-case; staff may type them either way


def _on_database(command: Command) -> Callable[[argparse.Namespace], None]:
    """``command`` on the clinic database, its failures turned into a message and exit status 1."""

    def run(args: argparse.Namespace) -> None:
        try:
            command(engine_for(settings.CLINIC_DATABASE_URL), args)
        except RequestNotFound:
            sys.exit(f"No consultation request {args.reference}")
        except StoreUnavailable as error:
            sys.exit(f"Clinic database unavailable: {error}")

    return run


def list_command(engine: Engine, args: argparse.Namespace) -> None:
    requests = list_requests(engine, args.status)
    if args.json:
        print(json.dumps([as_json(stored) for stored in requests], indent=2))
    elif not requests:
        print("No consultation requests" + (f" with status {args.status}." if args.status else "."))
    else:
        print(table(requests))


def show_command(engine: Engine, args: argparse.Namespace) -> None:
    stored = get_request(engine, args.reference)
    print(json.dumps(as_json(stored), indent=2) if args.json else details(stored))


def mark_contacted_command(engine: Engine, args: argparse.Namespace) -> None:
    mark_contacted(engine, args.reference, datetime.now(timezone.utc))
    print(f"{args.reference} marked as contacted.")


def retry_command(engine: Engine, args: argparse.Namespace) -> None:
    count = retry_delivery(engine, args.reference, datetime.now(timezone.utc))
    if args.reference and not count:
        print(f"{args.reference} has no delivery waiting: it was delivered.")
        return
    print(f"{count} {'delivery' if count == 1 else 'deliveries'} due now.")
    if count and not settings.CLINIC_WEBHOOK_URL:
        print("CLINIC_WEBHOOK_URL is not set, so no delivery worker will send them.", file=sys.stderr)


def as_json(stored: StoredRequest) -> Dict[str, object]:
    """One flat object: the request's fields and its delivery state, times in ISO 8601."""
    values = {k: v for k, v in asdict(stored).items() if k != "request"}
    values.update(asdict(stored.request))
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}


def table(requests: List[StoredRequest]) -> str:
    """Aligned columns: reference, created, status, delivery (attempts), name."""
    header = ("REFERENCE", "CREATED", "STATUS", "DELIVERY", "NAME")
    rows = [
        (
            stored.reference,
            _time(stored.created_at),
            stored.status,
            f"{stored.delivery_status} ({stored.attempts})",
            _printable(stored.request.name),
        )
        for stored in requests
    ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in [header, *rows])


def details(stored: StoredRequest) -> str:
    """Every field of one request, one per line, for reading in a terminal."""
    request = stored.request
    delivery = f"{stored.delivery_status}, {stored.attempts} attempt{'' if stored.attempts == 1 else 's'}"
    if stored.delivery_status != "delivered" and stored.next_attempt_at:
        delivery += f", next attempt {_time(stored.next_attempt_at)}"
    consent = f"yes, {_time(request.consent_at)}" if request.consent_to_contact else "no"
    lines = [
        ("Reference", stored.reference),
        ("Status", stored.status),
        ("Created", _time(stored.created_at)),
        ("Delivered", _time(stored.delivered_at)),
        ("Contacted", _time(stored.contacted_at)),
        ("Delivery", delivery),
        ("Last error", stored.last_error or "-"),
        ("Name", request.name),
        ("Phone", request.phone),
        ("Email", request.email or "-"),
        ("Help with", request.help_with),
        ("Best times", request.best_times),
        ("Consent", consent),
        ("Channel", request.channel),
        ("Conversation", request.conversation_id),
    ]
    return "\n".join(_field(label, value) for label, value in lines)


def _field(label: str, value: str, width: int = 14) -> str:
    # A visitor's multi-line text stays in the value column.
    first, *more = _printable(value, keep_newlines=True).split("\n")
    return "\n".join([f"{label + ':':<{width}}{first}", *(" " * width + line for line in more)])


def _time(moment: Optional[datetime]) -> str:
    # The staff's local time, as their terminal's clock shows it.
    return moment.astimezone().strftime("%Y-%m-%d %H:%M %Z") if moment else "-"


def _printable(text: str, keep_newlines: bool = False) -> str:
    # Visitors typed these: control characters could rewrite the staff's terminal.
    return "".join(c if c.isprintable() or (keep_newlines and c == "\n") else "?" for c in text)
