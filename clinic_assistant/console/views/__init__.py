"""The console's pages: the queue, transcripts, requests, teaching, the dashboard and the audit log."""

from aiohttp import web

from clinic_assistant.console.views import audit, dashboard, queue, requests, teaching, transcript


def register(router: web.UrlDispatcher) -> None:
    """Add every page's routes to ``router``; each has a name, for ``url()`` in templates."""
    router.add_get("/", queue.queue_page, name="queue")
    router.add_get("/conversations/{id}", transcript.transcript_page, name="transcript")
    router.add_post("/conversations/{id}/reveal", transcript.reveal, name="reveal")
    router.add_post("/conversations/{id}/tags", transcript.add_tag, name="tag")
    router.add_post("/conversations/{id}/tags/{tag}/delete", transcript.remove_tag, name="untag")
    router.add_post("/conversations/{id}/notes", transcript.add_note, name="note")
    router.add_post("/conversations/{id}/reviewed", transcript.mark_reviewed, name="reviewed")
    router.add_post("/conversations/{id}/messages/{event_id}/correction", teaching.correct, name="correction")
    router.add_get("/requests", requests.requests_page, name="requests")
    router.add_get("/requests.csv", requests.requests_csv, name="requests_csv")
    router.add_post("/requests/{kind}/{id}/status", requests.change_status, name="request_status")
    router.add_get("/teaching", teaching.teaching_page, name="teaching")
    router.add_get("/teaching/corrections.yml", teaching.corrections_yaml, name="corrections_yaml")
    router.add_get("/dashboard", dashboard.dashboard_page, name="dashboard")
    router.add_get("/audit", audit.audit_page, name="audit")
    router.add_get("/audit.csv", audit.audit_csv, name="audit_csv")
