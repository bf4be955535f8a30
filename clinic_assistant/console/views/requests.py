"""Patients' requests (consultation, talk to a person, reach out after a crisis): status, delivery, CSV export."""

from datetime import datetime, timedelta, timezone
from typing import Mapping, Optional, Tuple
from urllib.parse import urlencode

from aiohttp import web

from clinic_assistant.console.masking import mask_contacts, mask_name
from clinic_assistant.console.views.common import (
    actor,
    audited,
    bad_request,
    call,
    clinic,
    csv_download,
    page,
    record_id,
    see_other,
)
from clinic_assistant.store import review, sms
from clinic_assistant.store.tables import STAFF_REQUEST_STATUSES

KINDS = {"consultation": "Consultation", "handoff": "Talk to a person", "reach_out": "Reach out after a crisis"}
STATUSES = STAFF_REQUEST_STATUSES  # new, contacted, scheduled, closed
# A text still not answered after this long is listed for staff (a turn takes seconds; retries follow).
UNANSWERED_AFTER = timedelta(minutes=1)
UNDELIVERED_SHOWN = 50  # the newest replies Twilio would not take


def anchor(kind: str, request_id: int) -> str:
    """The id of a request's row on the page, which transcripts link to (/requests#handoff-3)."""
    return f"{kind}-{request_id}"


def parse_filters(query: Mapping[str, str]) -> Tuple[Optional[str], Optional[str]]:
    """(kind, status) from the query string, None for any; ValueError saying what is wrong."""
    kind, status = query.get("kind") or None, query.get("status") or None
    if kind is not None and kind not in KINDS:
        raise ValueError(f"Kind must be one of {', '.join(KINDS)}.")
    if status is not None and status not in STATUSES:
        raise ValueError(f"Status must be one of {', '.join(STATUSES)}.")
    return kind, status


async def requests_page(request: web.Request) -> web.Response:
    context = {"kinds": KINDS, "statuses": STATUSES, "form": request.query, "rows": [], "csv_url": "/requests.csv"}
    try:
        kind, status = parse_filters(request.query)
    except ValueError as problem:
        return page(request, "requests.html", {**context, "error": str(problem)}, status=400)
    filters = {name: value for name, value in (("kind", kind), ("status", status)) if value}
    context["csv_url"] = "/requests.csv" + (f"?{urlencode(filters)}" if filters else "")
    rows = await call(review.requests, clinic(request), kind, status)
    shown = [
        {"row": row, "name": mask_name(row.name or ""), "contact": mask_contacts(row.contact or "", [row.name or ""])}
        for row in rows
    ]
    return page(request, "requests.html", {**context, "rows": shown, **await unanswered_texts(request)})


async def unanswered_texts(request: web.Request) -> dict:
    """Texts whose turn has not been answered after a minute, and replies Twilio would not take: staff follow
    these up by phone, since the assistant could not."""
    waiting = await call(sms.unanswered, clinic(request), datetime.now(timezone.utc) - UNANSWERED_AFTER)
    refused = await call(sms.undelivered, clinic(request))
    return {
        "texts": [{**row, "phone": mask_contacts(row["phone"] or ""), "body": mask_contacts(row["body"] or "")}
                  for row in waiting],
        "undelivered": [{**row, "phone": mask_contacts(row["phone"]), "body": mask_contacts(row["body"])}
                        for row in refused[-UNDELIVERED_SHOWN:]],
    }


async def change_status(request: web.Request) -> web.Response:
    """Set a request's status (new, contacted, scheduled, closed) as the signed-in user; audited."""
    kind, status = request.match_info["kind"], str((await request.post()).get("status", ""))
    request_id = record_id(request.match_info["id"])
    if kind not in KINDS or status not in STATUSES or request_id is None:
        raise bad_request(f"Choose a status among {', '.join(STATUSES)} for a consultation, handoff or reach-out.")
    try:
        await call(review.set_request_status, clinic(request), kind, request_id, status, actor(request))
    except review.RequestNotFound as missing:
        raise web.HTTPNotFound(text="No such request.") from missing
    except ValueError as problem:
        raise bad_request(str(problem)) from problem
    await audited(request, "status_change", anchor(kind, request_id), f"status {status}")
    raise see_other("/requests", "status", anchor(kind, request_id))


async def requests_csv(request: web.Request) -> web.Response:
    """The requests (the page's filters apply) with contact details, for the clinic's own records; audited."""
    try:
        kind, status = parse_filters(request.query)
    except ValueError as problem:
        raise bad_request(str(problem)) from problem
    rows = await call(review.requests, clinic(request), kind, status)
    await audited(request, "export_requests", "", f"{len(rows)} requests")
    return csv_download(review.requests_csv(rows), "requests.csv")
