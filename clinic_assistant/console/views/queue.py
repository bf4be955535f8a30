"""The queue: conversations to review, the most urgent first, with filters and a next-page link."""

from datetime import date
from typing import Any, Dict, List, Mapping, Optional, Sequence

from aiohttp import web
from sqlalchemy.engine import Engine

from clinic_assistant.console.masking import mask_contacts
from clinic_assistant.console.views.common import call, clinic, page, tracker
from clinic_assistant.store import review

FLAGS = review.FLAG_FILTERS  # crisis, emergency, any
REVIEWS = review.REVIEW_FILTERS
MAX_FILTER_CHARS = 200
PREVIEW_CHARS = 160
FILTER_NAMES = ("date_from", "date_to", "channel", "flag", "intent", "review", "tag", "text")


class FilterError(ValueError):
    """A filter value the queue can't use; the message says which and why, for the page to show."""


def parse_filters(query: Mapping[str, str]) -> review.QueueFilters:
    """The queue's filters from the page's query string; ``FilterError`` naming every bad value."""
    values = {name: (query.get(name) or "").strip() or None for name in FILTER_NAMES}
    too_long = [name for name, value in values.items() if len(value or "") > MAX_FILTER_CHARS]
    problems = [f"{name.replace('_', ' ')} is too long" for name in too_long]
    # Control characters (NUL above all, which PostgreSQL refuses) are never part of a real search.
    unprintable = [name for name, value in values.items() if value and not value.isprintable()]
    problems += [f"{name.replace('_', ' ')} has characters that cannot be searched for" for name in unprintable]
    dates = {name: _date(values[name], name, problems) for name in ("date_from", "date_to")}
    if values["flag"] and values["flag"] not in FLAGS:
        problems.append(f"flag must be one of {', '.join(FLAGS)}")
    if values["review"] and values["review"] not in REVIEWS:
        problems.append(f"review status must be one of {', '.join(REVIEWS)}")
    if dates["date_from"] and dates["date_to"] and dates["date_from"] > dates["date_to"]:
        problems.append("date from is after date to")
    if problems:
        raise FilterError("; ".join(problems).capitalize() + ".")
    return review.QueueFilters(**{**values, **dates})


def _date(value: Optional[str], name: str, problems: List[str]) -> Optional[date]:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        problems.append(f"{name.replace('_', ' ')} must be a date such as 2024-05-31")
        return None


def _menus(engine: Engine) -> Dict[str, List[str]]:
    return {"channels": review.channels(engine), "intents": review.intents(engine), "tags": review.tags(engine)}


def preview(message: str, names: Sequence[str] = ()) -> str:
    """The first patient message as the queue shows it: contacts and the patient's ``names`` masked first, so a cut
    never shows digits."""
    masked = " ".join(mask_contacts(message or "", names).split())
    return masked if len(masked) <= PREVIEW_CHARS else masked[: PREVIEW_CHARS - 1] + "\u2026"


async def queue_page(request: web.Request) -> web.Response:
    context: Dict[str, Any] = {"form": {name: request.query.get(name, "") for name in FILTER_NAMES}}
    context.update(await call(_menus, clinic(request)), flags=FLAGS, reviews=REVIEWS, rows=[], next_url=None)
    try:
        filters = parse_filters(request.query)
        result = await call(review.queue, clinic(request), filters, request.query.get("after") or None)
    except FilterError as problem:
        return page(request, "queue.html", {**context, "error": str(problem)}, status=400)
    except ValueError:
        # Only a tampered or outdated "after" cursor gets here: the filters were checked above.
        error = "This page link is no longer valid: start again from the first page."
        return page(request, "queue.html", {**context, "error": error}, status=400)
    ids = [row.conversation_id for row in result.rows]
    names = await call(review.known_names, clinic(request), ids, tracker(request))
    rows = [
        {"row": row, "preview": preview(row.first_message, names.get(row.conversation_id, ()))} for row in result.rows
    ]
    next_url = None
    if result.next_after:
        next_url = str(request.rel_url.update_query(after=result.next_after).without_query_params("done"))
    return page(request, "queue.html", {**context, "rows": rows, "next_url": next_url})
