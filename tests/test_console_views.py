"""The console's pages through aiohttp's test client: queue, transcript, requests, teaching, dashboard, audit.

A Rasa-shaped tracker store (SQLite) is filled with events, indexed into the clinic database (SQLite and
PostgreSQL), and staff log in through the login form as a browser would.
"""

import csv
import io
import json
import re
import secrets
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from html import unescape
from pathlib import Path
from typing import Any, Dict, List, Optional
from urllib.parse import quote

import pytest
import yaml
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy.engine import Engine

from clinic_assistant.console import charts
from clinic_assistant.console.app import create_app
from clinic_assistant.console.indexer import index_new_events
from clinic_assistant.console.views.teaching import correction_choices
from clinic_assistant.store import review, sms
from clinic_assistant.store.consultations import (
    ConsultationRequest,
    HandoffRequest,
    record_handoff,
    submit_consultation,
)
from clinic_assistant.store.db import Flag, ReachOut, engine_for, record_all, record_flag
from clinic_assistant.store.schema import upgrade
from clinic_assistant.store.sms import InboundText
from clinic_assistant.store.staff import create_user

XSS = "<script>alert(1)</script><img src=x onerror=alert(2)>"
PHONE_TEXT = "please call me on 850-555-0142 or write to jane.doe@example.com"
PHONE = "+18505550142"
PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

# Rasa's SQL tracker store table, as Rasa 3.6 creates it.
events = review.TRACKER_EVENTS


class Tracker:
    """Writes conversations into the tracker store the way Rasa does, one event a second apart."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        events.create(engine, checkfirst=True)
        self.clock = time.time() - 3600

    def _add(self, sender: str, data: Dict[str, Any], intent: Optional[str] = None, action: Optional[str] = None):
        self.clock += 1
        data = {**data, "timestamp": self.clock}
        row = {
            "sender_id": sender,
            "type_name": data["event"],
            "timestamp": self.clock,
            "intent_name": intent,
            "action_name": action,
            "data": json.dumps(data),
        }
        with self.engine.begin() as connection:
            return connection.execute(events.insert().values(row)).inserted_primary_key[0]

    def start(self, sender: str) -> None:
        self._add(sender, {"event": "action", "name": "action_session_start"}, action="action_session_start")
        self._add(sender, {"event": "session_started"})
        self._add(sender, {"event": "action", "name": "action_listen"}, action="action_listen")

    def user(
        self, sender: str, text: str, intent: str, confidence: float, channel: str = "rest", response: str = ""
    ) -> int:
        parse_data: Dict[str, Any] = {
            "text": text,
            "intent": {"name": intent, "confidence": confidence},
            "entities": [],
            "intent_ranking": [{"name": intent, "confidence": confidence}],
        }
        if response:
            retrieval = response.split("/")[0]
            parse_data["response_selector"] = {
                "all_retrieval_intents": [retrieval],
                retrieval: {
                    "response": {
                        "confidence": 0.9,
                        "intent_response_key": response,
                        "utter_action": f"utter_{response}",
                        "responses": [{"text": "..."}],
                    },
                    "ranking": [],
                },
            }
        data = {"event": "user", "text": text, "parse_data": parse_data, "input_channel": channel, "metadata": {}}
        return self._add(sender, data, intent=intent)

    def bot(self, sender: str, text: str, utter_action: str) -> int:
        self._add(sender, {"event": "action", "name": utter_action}, action=utter_action)
        return self._add(sender, {"event": "bot", "text": text, "metadata": {"utter_action": utter_action}})

    def slot(self, sender: str, name: str, value: Any) -> None:
        self._add(sender, {"event": "slot", "name": name, "value": value})


@dataclass
class Seeded:
    """The conversation every test starts from, and the ids tests need."""

    conversation_id: str
    xss_turn: int  # the patient message with markup in it
    phone_turn: int  # the patient message with a phone number and an e-mail address
    symptoms_turn: int


class Console:
    """The console app under test, its databases, and helpers to act as a staff member."""

    def __init__(self, client: TestClient, tracker: Tracker, clinic: Engine) -> None:
        self.client = client
        self.tracker = tracker
        self.clinic = clinic
        self.token = ""

    def index(self) -> None:
        while index_new_events(self.tracker.engine, self.clinic):
            pass

    async def login(self, role: str = "reviewer") -> str:
        username = f"{role}-{secrets.token_hex(4)}"
        create_user(self.clinic, username, PASSWORD, role, None, datetime.now(timezone.utc))
        login_page = await (await self.client.get("/login")).text()
        reply = await self.client.post(
            "/login", data={"username": username, "password": PASSWORD, "csrf_token": csrf_of(login_page)}
        )
        assert reply.status == 200 and reply.url.path != "/login", await reply.text()
        self.token = csrf_of(await (await self.client.get("/dashboard")).text())
        return username

    async def page(self, path: str, status: int = 200) -> str:
        reply = await self.client.get(path)
        text = await reply.text()
        assert reply.status == status, (path, reply.status, text[:2000])
        return text

    async def post(self, path: str, data: Optional[Dict[str, str]] = None, token: Optional[str] = None) -> Any:
        form = {**(data or {}), "csrf_token": self.token if token is None else token}
        return await self.client.post(path, data=form, allow_redirects=False)

    def audit_of(self, username: str) -> List[Any]:
        """The user's audit entries, oldest first, but for logging in (audited by the login view)."""
        entries = review.audit_entries(self.clinic, None)
        return [e for e in reversed(entries) if e.actor == username and e.action not in ("login", "logout")]

    def seed(self, conversation_id: Optional[str] = None, channel: str = "rest") -> Seeded:
        """A conversation with every kind of turn, contact slots, a crisis flag and one request of each kind."""
        sender = conversation_id or f"conv-{secrets.token_hex(6)}"
        tracker, now = self.tracker, datetime.now(timezone.utc)
        tracker.start(sender)
        xss = tracker.user(sender, XSS, "nlu_fallback", 0.31, channel)
        tracker.bot(sender, "Sorry, I did not understand that.", "utter_not_understood")
        phone = tracker.user(sender, PHONE_TEXT, "request_consultation", 0.97, channel)
        tracker.slot(sender, "consult_phone", PHONE)
        tracker.slot(sender, "consult_email", "jane.doe@example.com")
        tracker.slot(sender, "consult_name", "Jane Doe")
        tracker.bot(sender, "Thanks, the clinic will call you.", "utter_consultation_submitted")
        symptoms = tracker.user(sender, "what are the signs of crps", "symptoms", 0.88, channel, "symptoms/overview")
        tracker.bot(sender, "The most common symptoms of CRPS are...", "utter_symptoms/overview")
        record_flag(self.clinic, Flag(sender, channel, "crisis", "pattern", "I can't go on", now))
        consultation = ConsultationRequest(sender, channel, "=HYPERLINK(\"http://evil.example\")", PHONE, None,
                                           "CRPS in my hand", "mornings", True, now)
        submit_consultation(self.clinic, consultation, now)
        record_handoff(self.clinic, HandoffRequest(sender, channel, XSS, PHONE, "phone", "talk to someone", now))
        record_all(self.clinic, [ReachOut(sender, channel, "jane.doe@example.com", "email", "please call", now)])
        self.index()
        return Seeded(sender, xss, phone, symptoms)


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, "no CSRF token in the page"
    return unescape(found.group(1))


def path_of(conversation_id: str, *rest: str) -> str:
    return "/".join(["/conversations", quote(conversation_id, safe=""), *rest])


@pytest.fixture
async def console(clinic_db_url: str, tmp_path: Path):
    upgrade(clinic_db_url)
    tracker_url = f"sqlite:///{tmp_path / 'tracker.db'}"
    tracker = Tracker(engine_for(tracker_url))
    app = create_app(tracker_url, clinic_db_url, session_key=secrets.token_bytes(32), index_seconds=None)
    async with TestClient(TestServer(app)) as client:
        yield Console(client, tracker, engine_for(clinic_db_url))


async def test_every_page_renders_for_a_reviewer(console):
    seeded = console.seed()
    await console.login()
    queue = await console.page("/")
    assert path_of(seeded.conversation_id) in queue and "Crisis" in queue
    transcript = await console.page(path_of(seeded.conversation_id))
    assert "what are the signs of crps" in transcript and "utter_symptoms/overview" in transcript
    assert "0.88" in transcript and "symptoms/overview" in transcript  # what the model chose, and how sure
    requests = await console.page("/requests")
    assert "Consultation" in requests and "Talk to a person" in requests and "Reach out after a crisis" in requests
    assert "Teaching the assistant" in await console.page("/teaching")
    dashboard = await console.page("/dashboard")
    assert '<svg' in dashboard and 'role="img"' in dashboard


async def test_the_audit_log_is_for_admins_only_and_its_export_is_audited(console):
    reviewer = await console.login("reviewer")
    assert (await console.client.get("/audit")).status == 403
    assert (await console.client.get("/audit.csv")).status == 403
    assert "export_audit" not in [entry.action for entry in console.audit_of(reviewer)]
    admin = await console.login("admin")
    page = await console.page("/audit")
    assert "Audit log" in page
    reply = await console.client.get("/audit.csv")
    assert reply.status == 200 and reply.content_type == "text/csv"
    assert "attachment" in reply.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(await reply.text())))
    assert len(rows) >= 1
    assert "export_audit" in [entry.action for entry in console.audit_of(admin)]


async def test_the_audit_page_pages_back_by_id(console):
    admin = await console.login("admin")
    for n in range(105):
        review.audit(console.clinic, admin, "view_transcript", f"conv-{n}")
    first = await console.page("/audit")
    older = re.search(r'href="(/audit\?before=\d+)"', first)
    assert older, "no link to older entries"
    second = await console.page(unescape(older.group(1)))
    assert "conv-0<" in second and "conv-104<" not in second and "conv-104<" in first
    for bad in ("abc", "-1", "99999999999", "\u00b2"):
        assert "not valid" in await console.page(f"/audit?before={bad}", status=400)


async def test_a_transcript_masks_contacts_and_viewing_it_is_audited(console):
    seeded = console.seed()
    username = await console.login()
    page = await console.page(path_of(seeded.conversation_id))
    assert "555-0142" not in page and "jane.doe@example.com" not in page and "Jane Doe" not in page
    assert "42" in page  # the masked number keeps its last digits, for staff to tell numbers apart
    assert "Reveal contact details" in page
    assert [(e.action, e.target) for e in console.audit_of(username)] == [("view_transcript", seeded.conversation_id)]
    for entry in console.audit_of(username):
        assert "555" not in entry.detail and "@" not in entry.detail


async def test_revealing_contact_details_shows_them_and_is_audited(console):
    seeded = console.seed()
    username = await console.login()
    reply = await console.post(path_of(seeded.conversation_id, "reveal"))
    page = await reply.text()
    assert reply.status == 200
    assert "850-555-0142" in page and "jane.doe@example.com" in page and "Jane Doe" in page and PHONE in page
    assert "recorded in the audit log" in page
    assert ("reveal_contact", seeded.conversation_id) in [(e.action, e.target) for e in console.audit_of(username)]
    # A plain view afterwards is masked again: revealing is one page, not a mode.
    assert "850-555-0142" not in await console.page(path_of(seeded.conversation_id))
    # Only by POST: no link can reveal contact details.
    assert (await console.client.get(path_of(seeded.conversation_id, "reveal"))).status == 405


async def test_tags_notes_and_review_are_saved_and_redirect_back(console):
    seeded = console.seed()
    username = await console.login()
    page_path = path_of(seeded.conversation_id)
    reply = await console.post(path_of(seeded.conversation_id, "tags"), {"tag": "  needs   follow-up "})
    assert reply.status == 303 and reply.headers["Location"].startswith(page_path + "?done=tagged")
    reply = await console.post(path_of(seeded.conversation_id, "notes"), {"text": "Called back, all fine."})
    assert reply.status == 303 and "done=noted" in reply.headers["Location"]
    page = await console.page(page_path + "?done=noted")
    assert "needs follow-up" in page and "Called back, all fine." in page and username in page
    assert "Note added." in page
    console.index()
    assert "needs follow-up" in await console.page("/?tag=needs+follow-up")

    reply = await console.post(path_of(seeded.conversation_id, "tags", "needs follow-up", "delete"))
    assert reply.status == 303 and "done=untagged" in reply.headers["Location"]
    assert "needs follow-up" not in await console.page(page_path)

    reply = await console.post(path_of(seeded.conversation_id, "reviewed"))
    assert reply.status == 303 and "done=reviewed" in reply.headers["Location"]
    assert f"Reviewed by {username}" in await console.page(page_path)
    assert (await console.post(path_of(seeded.conversation_id, "tags"), {"tag": " "})).status == 400
    assert (await console.post(path_of(seeded.conversation_id, "notes"), {"text": ""})).status == 400


async def test_an_unknown_done_message_is_not_shown(console):
    seeded = console.seed()
    await console.login()
    page = await console.page(path_of(seeded.conversation_id) + "?done=Your+account+was+hacked")
    assert "hacked" not in page


@pytest.mark.parametrize(
    "route",
    ["reveal", "tags", "tags/urgent/delete", "notes", "reviewed", "messages/{turn}/correction", "requests"],
)
async def test_every_post_needs_the_csrf_token(console, route):
    seeded = console.seed()
    username = await console.login()
    if route == "requests":
        row = next(r for r in review.requests(console.clinic) if r.conversation_id == seeded.conversation_id)
        path = f"/requests/{row.kind}/{row.id}/status"
    else:
        path = path_of(seeded.conversation_id, *route.format(turn=seeded.symptoms_turn).split("/"))
    data = {"tag": "urgent", "text": "a note", "intent": "greet", "status": "closed"}
    for token in ("", "not-the-token"):
        assert (await console.post(path, data, token=token)).status == 403, path
    assert [e.action for e in console.audit_of(username)] == []
    assert (await console.post(path, data)).status in (200, 303)


async def test_a_correction_is_listed_for_teaching_and_exported_as_nlu_data(console):
    seeded = console.seed()
    username = await console.login()
    path = path_of(seeded.conversation_id, "messages", str(seeded.xss_turn), "correction")
    reply = await console.post(path, {"intent": "symptoms/pain"})
    assert reply.status == 303 and reply.headers["Location"].endswith(f"done=corrected#turn-{seeded.xss_turn}")
    phone_path = path_of(seeded.conversation_id, "messages", str(seeded.phone_turn), "correction")
    assert (await console.post(phone_path, {"intent": "deny"})).status == 303
    assert (await console.post(phone_path, {"intent": "greet"})).status == 303  # a second thought: this one counts
    transcript = await console.page(path_of(seeded.conversation_id))
    assert f"corrected to <strong>symptoms/pain</strong> by {username}" in transcript
    assert "corrected to <strong>greet</strong>" in transcript
    assert "corrected to <strong>deny</strong>" not in transcript
    teaching = await console.page("/teaching")
    assert "symptoms/pain" in teaching and "Not yet in the training data" in teaching
    assert "555-0142" not in teaching  # the patient's number stays masked here too

    reply = await console.client.get("/teaching/corrections.yml")
    assert reply.status == 200 and reply.content_type == "text/yaml"
    assert "attachment" in reply.headers["Content-Disposition"]
    data = yaml.safe_load(await reply.text())
    assert str(data["version"]) == "3.1"
    examples = {item["intent"]: item["examples"] for item in data["nlu"]}
    # That message is also the name on the conversation's handoff request (the seed's): a name, so replaced.
    assert "- [name]" in examples["symptoms/pain"].splitlines() and "<script>" not in await reply.text()
    # Meant for the repository: contact details replaced by placeholders, as the file and the page say.
    assert "- please call me on [phone] or write to [email]" in examples["greet"].splitlines()
    assert "deny" not in examples
    assert "555" not in await reply.text() and "jane.doe" not in await reply.text()
    assert (await reply.text()).startswith("# Phone numbers, e-mail addresses and the names patients gave")
    assert "are replaced by <code>[phone]</code>, <code>[email]</code> and <code>[name]</code>" in teaching
    assert "export_corrections" in [e.action for e in console.audit_of(username)]


@pytest.mark.parametrize("choice", ["", "no_such_intent", "symptoms/no_such_answer", "crps/overview/x", "utter_greet"])
async def test_a_correction_must_be_an_intent_or_response_of_the_assistant(console, choice):
    seeded = console.seed()
    await console.login()
    path = path_of(seeded.conversation_id, "messages", str(seeded.xss_turn), "correction")
    reply = await console.post(path, {"intent": choice})
    assert reply.status == 400
    assert [c for c in review.corrections(console.clinic) if c.conversation_id == seeded.conversation_id] == []


async def test_only_patient_messages_of_the_conversation_can_be_corrected(console):
    seeded = console.seed()
    other = console.seed()
    await console.login()
    for conversation, event in [
        (seeded.conversation_id, "999999"),  # no such event
        (seeded.conversation_id, str(other.xss_turn)),  # another conversation's message
        (seeded.conversation_id, "abc"),
        (seeded.conversation_id, "99999999999"),
        ("no-such-conversation", str(seeded.xss_turn)),
    ]:
        reply = await console.post(path_of(conversation, "messages", event, "correction"), {"intent": "greet"})
        assert reply.status in (400, 404), (conversation, event, reply.status)


def test_correction_choices_come_from_the_domain_and_the_responses():
    choices = correction_choices()
    assert "greet" in choices.intents and "crisis" in choices.intents
    assert "symptoms" not in choices.intents  # a retrieval intent is chosen by its answer
    assert "symptoms/overview" in choices.responses["symptoms"]
    assert choices.parse("symptoms/overview") == ("symptoms", "symptoms/overview")
    assert choices.parse("greet") == ("greet", None)
    with pytest.raises(ValueError):
        choices.parse("greet/overview")


async def test_request_status_changes_are_shown_with_who_and_when_and_audited(console):
    seeded = console.seed()
    username = await console.login()
    rows = [r for r in review.requests(console.clinic) if r.conversation_id == seeded.conversation_id]
    assert {r.kind for r in rows} == {"consultation", "handoff", "reach_out"}
    handoff = next(r for r in rows if r.kind == "handoff")
    reply = await console.post(f"/requests/handoff/{handoff.id}/status", {"status": "contacted"})
    assert reply.status == 303 and reply.headers["Location"] == f"/requests?done=status#handoff-{handoff.id}"
    page = await console.page("/requests?done=status")
    row_html = page[page.index(f'id="handoff-{handoff.id}"'):]
    row_html = row_html[: row_html.index("</tr>")]
    assert "Contacted" in row_html and f"by {username}" in row_html and "UTC" in row_html
    assert "Request status changed." in page
    assert ("status_change", f"handoff-{handoff.id}") in [(e.action, e.target) for e in console.audit_of(username)]
    # The contact is masked on the page.
    assert "850-555-0142" not in page and PHONE not in page and "jane.doe@example.com" not in page
    filtered = await console.page("/requests?status=contacted&kind=handoff")
    assert f'id="handoff-{handoff.id}"' in filtered and 'id="consultation-' not in filtered
    assert (await console.post(f"/requests/handoff/{handoff.id}/status", {"status": "lost"})).status == 400
    assert (await console.post("/requests/handoff/99999999/status", {"status": "closed"})).status == 404
    assert (await console.post(f"/requests/parcel/{handoff.id}/status", {"status": "closed"})).status == 400
    assert (await console.post("/requests/handoff/99999999999/status", {"status": "closed"})).status == 400


async def test_the_transcript_links_to_its_requests(console):
    seeded = console.seed()
    await console.login()
    page = await console.page(path_of(seeded.conversation_id))
    for row in review.requests(console.clinic):
        if row.conversation_id == seeded.conversation_id:
            assert f'href="/requests#{row.kind}-{row.id}"' in page


async def test_the_requests_export_is_csv_with_formulas_defused_and_is_audited(console):
    seeded = console.seed()
    username = await console.login()
    reply = await console.client.get("/requests.csv")
    assert reply.status == 200 and reply.content_type == "text/csv"
    assert reply.headers["Content-Disposition"].startswith("attachment")
    rows = list(csv.reader(io.StringIO(await reply.text())))
    header, body = rows[0], rows[1:]
    assert {"kind", "status", "contact"} <= set(header)
    ours = [dict(zip(header, row, strict=True)) for row in body if seeded.conversation_id in row]
    assert len(ours) == 3
    for row in ours:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@")), cell
    assert "'=HYPERLINK(\"http://evil.example\")" in [row.get("name") for row in ours]
    assert f"'{PHONE}" in [row["contact"] for row in ours]
    assert "export_requests" in [e.action for e in console.audit_of(username)]
    assert (await console.client.get("/requests.csv?kind=parcel")).status == 400


async def test_patient_text_is_never_markup(console):
    seeded = console.seed()
    await console.login()
    path = path_of(seeded.conversation_id, "messages", str(seeded.xss_turn), "correction")
    assert (await console.post(path, {"intent": "out_of_scope"})).status == 303
    await console.post(path_of(seeded.conversation_id, "notes"), {"text": XSS})
    await console.post(path_of(seeded.conversation_id, "tags"), {"tag": "<b>tag</b>"})
    console.index()
    revealed = await (await console.post(path_of(seeded.conversation_id, "reveal"))).text()
    admin = await console.login("admin")
    review.audit(console.clinic, admin, "view_transcript", XSS)
    for page in [
        await console.page("/"),
        await console.page(path_of(seeded.conversation_id)),
        revealed,
        await console.page("/requests"),
        await console.page("/teaching"),
        await console.page("/audit"),
    ]:
        assert "<script>alert" not in page and "<img src=x" not in page and "<b>tag" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in await console.page(path_of(seeded.conversation_id))


async def test_a_conversation_id_with_slashes_and_markup_links_to_its_page(console):
    odd = f"a/b c?d#<i>{secrets.token_hex(3)}</i>"
    console.seed(odd)
    await console.login()
    queue = await console.page("/")
    assert quote(odd, safe="") in queue and "<i>" not in queue
    page = await console.page(path_of(odd))
    assert "&lt;i&gt;" in page
    reply = await console.post(path_of(odd, "tags"), {"tag": "odd"})
    assert reply.status == 303 and reply.headers["Location"].startswith(path_of(odd) + "?")


async def test_an_unknown_conversation_is_a_404_page(console):
    await console.login()
    page = await console.page(path_of("no-such-conversation"), status=404)
    assert "Conversation not found" in page
    reply = await console.post(path_of("no-such-conversation", "reveal"))
    assert reply.status == 404


@pytest.mark.parametrize(
    "query, message",
    [
        ("date_from=yesterday", "date such as"),
        ("date_to=2024-02-30", "date such as"),
        ("date_from=2024-05-02&date_to=2024-05-01", "after"),
        ("flag=panic", "flag must be one of"),
        ("review=maybe", "review status must be one of"),
        ("text=" + "x" * 201, "too long"),
        ("after=not-a-cursor", "no longer valid"),
        ("text=a%00b", "cannot be searched"),
    ],
)
async def test_invalid_queue_filters_are_a_400_page_that_says_why(console, query, message):
    await console.login()
    page = await console.page(f"/?{query}", status=400)
    assert message in page.lower() or message in page
    assert 'role="alert"' in page


async def test_invalid_request_filters_are_a_400_page(console):
    await console.login()
    assert "Kind must be one of" in await console.page("/requests?kind=parcel", status=400)
    assert "Status must be one of" in await console.page("/requests?status=lost", status=400)


async def test_the_queue_filters_and_pages_through_every_conversation(console):
    channel = f"test{secrets.token_hex(3)}"
    flagged = console.seed(channel=channel).conversation_id
    plain = []
    for n in range(55):
        sender = f"plain-{secrets.token_hex(4)}-{n}"
        console.tracker.start(sender)
        console.tracker.user(sender, f"hello number {n}", "greet", 0.99, channel)
        plain.append(sender)
    console.index()
    await console.login()

    crisis = await console.page(f"/?channel={channel}&flag=crisis")
    assert path_of(flagged) in crisis and not any(path_of(sender) in crisis for sender in plain)
    assert 'class="badge badge-crisis"' in crisis and "Crisis" in crisis

    seen, url = [], f"/?channel={channel}"
    while url:
        page = await console.page(url)
        seen += [c for c in [flagged, *plain] if f'href="{path_of(c)}"' in page]
        found = re.search(r'href="([^"]+)" rel="next"', page)
        url = unescape(found.group(1)) if found else None
    assert sorted(seen) == sorted([flagged, *plain])  # every one, once
    assert seen[0] == flagged  # the flagged conversation comes first


async def test_the_queue_shows_a_masked_first_message_and_the_counts(console):
    sender = f"conv-{secrets.token_hex(6)}"
    console.tracker.start(sender)
    console.tracker.user(sender, PHONE_TEXT, "request_consultation", 0.4)
    console.tracker.user(sender, "??", "nlu_fallback", 0.2)
    console.index()
    await console.login()
    page = await console.page("/")
    row = page[page.index(f'href="{path_of(sender)}"'):]
    row = row[: row.index("</tr>")]
    assert "please call me on" in row and "555-0142" not in row and "jane.doe@" not in row
    assert "Not reviewed" in row and "low confidence" in row


async def test_the_dashboard_shows_the_figures_as_charts_and_tables(console):
    console.seed(channel="socketio")
    await console.login()
    page = await console.page("/dashboard")
    assert page.count('role="img"') == 2 and page.count("<title") >= 2
    assert "Conversations per day by channel" in page and "Top topics" in page
    assert "socketio" in page and datetime.now(timezone.utc).date().isoformat() in page
    for label in ("Fallback rate", "Crisis flags", "Emergency flags", "Requests", "Contacted"):
        assert label in page
    assert "<script" not in page


def test_daily_counts_cover_every_day_and_sum_per_channel():
    d = date(2024, 5, 1)
    data = charts.daily_counts([(d, "rest", 2), (d + timedelta(3), "twilio", 5), (d, "twilio", 1)], d, d + timedelta(4))
    assert data.days == [d + timedelta(n) for n in range(5)]
    assert data.channels == ["twilio", "rest"]  # the busiest first
    assert data.total(d) == 3 and data.total(d + timedelta(1)) == 0 and data.grand_total == 8


def test_charts_are_labelled_images_and_escape_their_labels():
    d = date(2024, 5, 1)
    daily = charts.daily_chart(charts.daily_counts([(d, "<b>web</b>", 4)], d, d + timedelta(2)))
    assert daily.startswith("<svg") and 'role="img"' in daily and "<title" in daily and "<desc" in daily
    assert "<b>" not in daily and "&lt;b&gt;web" in daily
    assert "4 conversations" in daily  # the summary screen readers get
    bars = charts.bar_chart([("symptoms", 12), ("<script>x</script>", 3)])
    assert 'role="img"' in bars and "<script>" not in bars and "symptoms: 12" in bars
    assert "No conversations" in charts.daily_chart(charts.daily_counts([]))
    assert "No topics" in charts.bar_chart([])


@pytest.mark.parametrize("largest, top, step", [(0, 1, 1), (1, 1, 1), (7, 8, 2), (10, 10, 2), (93, 100, 20)])
def test_axis_scales_are_round_numbers(largest, top, step):
    assert charts.nice_scale(largest) == (top, step)


# ---- Names the forms collected, and characters that would change what staff read ----


def consultation(console: Console, channel: str) -> str:
    """A conversation where the patient gives a name, corrects it, and the form clears it once sent."""
    sender, tracker = f"conv-{secrets.token_hex(6)}", console.tracker
    tracker.start(sender)
    tracker.user(sender, "hi, I'm Maria Lopez and I'd like an appointment", "request_consultation", 0.9, channel)
    tracker.slot(sender, "consult_name", "Maria Lopez")
    tracker.bot(sender, "Thanks, Maria Lopez. What's the best phone number to reach you?", "utter_ask_consult_phone")
    tracker.user(sender, "850 555 0142 3pm is best, or maria (at) example (dot) com", "inform", 0.8, channel)
    tracker.slot(sender, "consult_summary", "Maria Lopez; +18505550142; no email.")
    tracker.bot(sender, "Maria Lopez; (850) 555-0142; no email. Shall I send it?", "utter_ask_consult_confirmed")
    tracker.user(sender, "actually it's Mary. my pain is 9/10 since 2019, worst at 10:30", "inform", 0.7, channel)
    tracker.slot(sender, "consult_name", "Mary")
    tracker.bot(sender, "Thanks, Mary. Sent.", "utter_consult_submitted")
    tracker.slot(sender, "consult_name", None)  # the form clears what it sent
    console.index()
    return sender


async def test_names_the_forms_collected_are_masked_everywhere_until_revealed(console):
    channel = f"names{secrets.token_hex(3)}"
    sender = consultation(console, channel)
    await console.login()
    page = await console.page(path_of(sender))
    for shown in ("Maria", "maria", "Lopez", "Mary", "555 0142", "555-0142", "(at) example"):
        assert shown not in page, shown
    assert "Thanks, M***. What" in page and "M***; (850) ***-**42; no email" in page  # the assistant's read-back
    assert "(850) ***-**42 3pm is best, or m***@example.com" in page
    assert "my pain is 9/10 since 2019, worst at 10:30" in page  # scores, years and times stay
    revealed = await (await console.post(path_of(sender, "reveal"))).text()
    assert "Thanks, Maria Lopez." in revealed and "actually it&#39;s Mary" in revealed
    queue = await console.page(f"/?channel={channel}")
    assert "hi, I&#39;m M*** and I&#39;d like an appointment" in queue and "Maria" not in queue

    path = path_of(sender, "messages", str(first_patient_turn(console, sender)), "correction")
    assert (await console.post(path, {"intent": "greet"})).status == 303
    teaching = await console.page("/teaching")
    assert "hi, I&#39;m M*** and I&#39;d like" in teaching and "Maria Lopez" not in teaching
    exported = await (await console.client.get("/teaching/corrections.yml")).text()
    assert "- hi, I'm [name] and I'd like an appointment" in exported and "Maria" not in exported


def first_patient_turn(console: Console, sender: str) -> int:
    found = review.transcript(console.tracker.engine, console.clinic, sender)
    return next(turn.event_id for turn in found.turns if turn.speaker == "patient")


# Controls, bidi embeddings, overrides and isolates, a zero-width space and a line separator.
SPOOFING = "\x00\x07\x1b\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\u2028"


async def test_control_and_bidi_characters_are_shown_not_obeyed_on_every_page(console, clinic_db_url):
    # PostgreSQL cannot hold NUL, so the conversation index cannot hold such a sender id there; texts keep theirs.
    nul = "\x00" if clinic_db_url.startswith("sqlite") else ""
    word = f"spoof{secrets.token_hex(4)}"
    sender, channel = f"visitor-\u202egnp.exe{nul}\u2066{word}\u2069", "web\u202echat"
    tracker, now = console.tracker, datetime.now(timezone.utc)
    tracker.start(sender)
    text = f"{word} pain\u202e 01/9 \x1b[31m red\x00 \u2067x\u2069 zero\u200bwidth\u2028"
    turn = tracker.user(sender, text, "symptoms", 0.4, channel)
    tracker.bot(sender, "Thanks \u202eMaria\u2069.", "utter_ask_consult_phone")
    tracker.slot(sender, "consult_help_with", "my hand\u202e and eye\x07")
    record_flag(console.clinic, Flag(sender, channel, "crisis", "pattern", f"I can't\u202e go on\x1b{nul}", now))
    record_handoff(console.clinic, HandoffRequest(sender, channel, "Ma\u202eria\u200b", PHONE, "phone", "talk", now))
    console.index()
    await console.login("admin")
    assert (await console.post(path_of(sender, "messages", str(turn), "correction"), {"intent": "greet"})).status == 303
    await console.post(path_of(sender, "tags"), {"tag": "odd\u202etag"})
    await console.post(path_of(sender, "notes"), {"text": "note\u202e\x1b"})
    pages = {
        "transcript": await console.page(path_of(sender)),
        "revealed": await (await console.post(path_of(sender, "reveal"))).text(),
        "queue": await console.page(f"/?text={word}"),
        "requests": await console.page("/requests"),
        "teaching": await console.page("/teaching"),
        "audit": await console.page("/audit"),
        "dashboard": await console.page("/dashboard"),
    }
    for name, html in pages.items():
        assert not set(SPOOFING) & set(html), (name, sorted(set(SPOOFING) & set(html)))
        assert "\u27e8U+202E\u27e9" in html, name
    assert "visitor-\u27e8U+202E\u27e9gnp.exe" in pages["transcript"]  # the override shown where it was
    assert "red\u27e8U+0000\u27e9 \u27e8U+2067\u27e9x\u27e8U+2069\u27e9" in pages["revealed"]
    for export in ("/audit.csv", "/requests.csv"):
        text = await (await console.client.get(export)).text()
        assert not set(SPOOFING) & set(text) and "\u27e8U+202E\u27e9" in text, export


async def test_texts_not_answered_and_replies_not_delivered_are_listed_for_staff(console):
    """A text whose turn keeps failing, and a reply Twilio refused, are on the requests page, contacts masked."""
    now = datetime.now(timezone.utc)
    sid = "SM" + secrets.token_hex(16)
    text = InboundText(sid, "sms-" + secrets.token_hex(8), "+18505550142", "call me at 850 555 0142 please", 0)
    sms.receive(console.clinic, text, now - timedelta(minutes=5))
    sms.claim(console.clinic, sid, now - timedelta(minutes=5), timedelta(minutes=2))
    sms.mark_failed(console.clinic, sid, "RuntimeError", now + timedelta(minutes=1))
    answered = InboundText("SM" + secrets.token_hex(16), text.conversation_id, text.phone, "thanks", 0)
    sms.receive(console.clinic, answered, now - timedelta(minutes=5))
    sms.mark_handled(console.clinic, answered.message_sid, now)
    sms.record_undelivered(console.clinic, "+18505550142", "The answer about CRPS", "HTTP 503", now)
    await console.login()
    html = await console.page("/requests")
    assert "Texts the assistant has not answered yet" in html and "RuntimeError" in html
    assert "call me at" in html and "555 0142" not in html and "+18505550142" not in html
    assert "thanks" not in html  # answered: not listed
    assert "The answer about CRPS" in html and "HTTP 503" in html
