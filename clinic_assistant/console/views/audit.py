"""The audit log, for admins: who viewed, revealed, exported or changed what, newest first."""

from aiohttp import web

from clinic_assistant.console.security import require_role
from clinic_assistant.console.views.common import audited, call, clinic, csv_download, page, record_id
from clinic_assistant.store import review

PAGE_SIZE = 100


@require_role("admin")
async def audit_page(request: web.Request) -> web.Response:
    before = request.query.get("before") or None
    before_id = record_id(before)
    if before is not None and before_id is None:
        return page(request, "audit.html", {"entries": [], "error": "The page link is not valid."}, status=400)
    # One more than shown, to know whether there is an older page.
    entries = await call(review.audit_entries, clinic(request), PAGE_SIZE + 1, before_id)
    older = f"/audit?before={entries[PAGE_SIZE - 1].id}" if len(entries) > PAGE_SIZE else None
    return page(request, "audit.html", {"entries": entries[:PAGE_SIZE], "older_url": older})


@require_role("admin")
async def audit_csv(request: web.Request) -> web.Response:
    """The whole audit log as CSV; the export is itself audited."""
    entries = await call(review.audit_entries, clinic(request), None)
    await audited(request, "export_audit", "", f"{len(entries)} entries")
    return csv_download(review.audit_csv(entries), "audit.csv")
