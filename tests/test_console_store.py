"""The staff console's data layer (``store/review.py``, masking, migration 0005) on real SQLite and PostgreSQL.

Conversations are written the way Rasa 3.6's SQL tracker store writes them, into an ``events`` table of a
database of the test's own; the console's indexer then reads them into the clinic database. The clinic's
PostgreSQL database is shared by the run: every test uses its own channel and conversation ids, and reads
only what it wrote. The helpers here are used by the indexer and retention tests too.
"""

import csv
import io
import json
import socket
import uuid
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any, Dict, Optional

import pytest
import yaml
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from clinic_assistant.console.indexer import run_until_done
from clinic_assistant.console.masking import mask_contacts, mask_slot, redact
from clinic_assistant.store import review
from clinic_assistant.store.consultations import (
    ConsultationRequest,
    HandoffRequest,
    get_request,
    mark_contacted,
    record_handoff,
    submit_consultation,
)
from clinic_assistant.store.db import Flag, ReachOut, StoreUnavailable, engine_for, from_row, record_all, record_flag
from clinic_assistant.store.schema import upgrade
from clinic_assistant.store.tables import conversations, request_status_events
from tests.conftest import temporary_postgres_database

T0 = datetime(2031, 3, 4, 10, 0, tzinfo=timezone.utc)
EASTERN = timezone(timedelta(hours=-5))

# Rasa 3.6's SQLTrackerStore.SQLEvent, column for column, as the console reads it.
EVENTS = review.TRACKER_EVENTS


class Tracker:
    """A Rasa tracker store's ``events`` table, written to as Rasa does."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = engine_for(url)
        EVENTS.create(self.engine, checkfirst=True)

    def event(self, sender: str, type_name: str, data: Dict[str, Any], event_id: Optional[int] = None, **names) -> int:
        row = {"sender_id": sender, "type_name": type_name, "timestamp": data["timestamp"], "data": json.dumps(data)}
        if event_id is not None:
            row["id"] = event_id
        with self.engine.begin() as connection:
            return connection.execute(insert(EVENTS).values(**row, **names)).inserted_primary_key[0]

    def user(
        self,
        sender: str,
        text: str,
        at: datetime,
        intent: str = "symptoms",
        confidence: float = 0.93,
        response: Optional[str] = "symptoms/overview",
        channel: str = "rest",
        metadata: Optional[dict] = None,
        event_id: Optional[int] = None,
    ) -> int:
        selector = {intent: {"response": {"intent_response_key": response, "confidence": 0.9}}} if response else {}
        data = {
            "event": "user",
            "timestamp": at.timestamp(),
            "text": text,
            "input_channel": channel,
            "parse_data": {
                "intent": {"name": intent, "confidence": confidence},
                "entities": [],
                "response_selector": selector,
                "text": text,
            },
            "metadata": metadata or {},
        }
        return self.event(sender, "user", data, event_id, intent_name=intent)

    def bot(self, sender: str, text: str, at: datetime, utter_action: str = "utter_symptoms/overview") -> int:
        metadata = {"utter_action": utter_action}
        data = {"event": "bot", "timestamp": at.timestamp(), "text": text, "data": {}, "metadata": metadata}
        return self.event(sender, "bot", data)

    def slot(self, sender: str, name: str, value: Any, at: datetime) -> int:
        data = {"event": "slot", "timestamp": at.timestamp(), "name": name, "value": value}
        return self.event(sender, "slot", data, action_name=name)

    def action(self, sender: str, name: str, at: datetime) -> int:
        data = {"event": "action", "timestamp": at.timestamp(), "name": name, "policy": None, "confidence": 1.0}
        return self.event(sender, "action", data, action_name=name)

    def session(self, sender: str, at: datetime) -> None:
        """What Rasa writes when a conversation starts, before the patient says anything."""
        self.action(sender, "action_session_start", at)
        self.event(sender, "session_started", {"event": "session_started", "timestamp": at.timestamp()})
        self.action(sender, "action_listen", at)

    def exchange(self, sender: str, text: str, at: datetime, reply: str = "Here is what the article says.", **user):
        """A patient message and the assistant's answer; the message's event id."""
        event_id = self.user(sender, text, at, **user)
        utter = f"utter_{user.get('response') or 'symptoms/overview'}"
        self.action(sender, "utter_symptoms", at + timedelta(milliseconds=5))
        self.bot(sender, reply, at + timedelta(milliseconds=10), utter)
        self.action(sender, "action_listen", at + timedelta(milliseconds=15))
        return event_id

    def count(self, sender: Optional[str] = None) -> int:
        query = select(func.count()).select_from(EVENTS)
        if sender is not None:
            query = query.where(EVENTS.c.sender_id == sender)
        with self.engine.connect() as connection:
            return connection.execute(query).scalar_one()


@pytest.fixture
def tracker(clinic_db_url, tmp_path):
    """A tracker store on the clinic database's backend, of this test only."""
    with ExitStack() as stack:
        if clinic_db_url.startswith("postgresql"):
            url = stack.enter_context(temporary_postgres_database())
        else:
            url = f"sqlite:///{tmp_path / 'tracker.db'}"
        yield Tracker(url)


@pytest.fixture
def clinic(clinic_db_url) -> Engine:
    upgrade(clinic_db_url)
    return engine_for(clinic_db_url)


@dataclass
class Console:
    """A test's tracker store and clinic database, with a channel no other test uses."""

    tracker: Tracker
    clinic: Engine
    channel: str

    def conversation(self, prefix: str = "visitor") -> str:
        return f"{prefix}-{uuid.uuid4().hex}"

    def index(self) -> int:
        return run_until_done(self.tracker.engine, self.clinic)

    def talk(self, at: datetime, *texts: str, sender: Optional[str] = None, **user) -> str:
        sender = sender or self.conversation()
        self.tracker.session(sender, at)
        for n, message in enumerate(texts or ("What are the symptoms of CRPS?",)):
            self.tracker.exchange(sender, message, at + timedelta(seconds=n), channel=self.channel, **user)
        return sender

    def queue(self, **filters) -> review.QueuePage:
        return review.queue(self.clinic, review.QueueFilters(channel=self.channel, **filters))

    def ids(self, **filters) -> list:
        return [row.conversation_id for row in self.queue(**filters).rows]

    def row(self, conversation_id: str) -> Optional[SimpleNamespace]:
        """The conversation's index row, times aware (as the store returns them), None if it has none."""
        with self.clinic.connect() as connection:
            row = connection.execute(
                select(conversations).where(conversations.c.conversation_id == conversation_id)
            ).one_or_none()
        return SimpleNamespace(**from_row(row)) if row else None


@pytest.fixture
def console(tracker, clinic) -> Console:
    return Console(tracker, clinic, f"t{uuid.uuid4().hex[:12]}")


def a_flag(conversation_id: str, kind: str = "crisis", at: datetime = T0) -> Flag:
    return Flag(conversation_id, "rest", kind, "pattern", "I can't go on like this", at)


def a_consultation(conversation_id: str) -> ConsultationRequest:
    return ConsultationRequest(
        conversation_id=conversation_id,
        channel="rest",
        name="María López",
        phone="+18505550142",
        email="maria@example.com",
        help_with="=HYPERLINK(\"http://evil\") burning pain",
        best_times="Mornings",
        consent_to_contact=True,
        consent_at=T0,
    )


def a_handoff(conversation_id: str, at: datetime = T0) -> HandoffRequest:
    return HandoffRequest(conversation_id, "rest", "Sam Lee", "sam@example.com", "email", "a nurse please", at)


def a_reach_out(conversation_id: str, at: datetime = T0) -> ReachOut:
    return ReachOut(conversation_id, "rest", "+18505550177", "phone", "please call me", at)


def request_id(engine: Engine, kind: str, conversation_id: str) -> int:
    [row] = [r for r in review.requests(engine, kind) if r.conversation_id == conversation_id]
    return row.id


# ---- Migration 0005: the audit log is append-only --------------------------------------------------------------------


def test_audit_log_refuses_update_and_delete(clinic):
    entry_id = review.audit(clinic, "alice", "view_transcript", "visitor-1", "opened", now=T0)
    for statement in (
        f"UPDATE audit_log SET actor = 'mallory' WHERE id = {entry_id}",
        f"DELETE FROM audit_log WHERE id = {entry_id}",
        "DELETE FROM audit_log",
    ):
        with pytest.raises(DBAPIError, match="append-only"):
            with clinic.begin() as connection:
                connection.execute(text(statement))
    [entry] = [e for e in review.audit_entries(clinic, 1000) if e.id == entry_id]
    assert (entry.actor, entry.action, entry.target, entry.detail, entry.at) == (
        "alice", "view_transcript", "visitor-1", "opened", T0
    )


def test_audit_log_refuses_truncate_on_postgresql(clinic):
    if clinic.dialect.name != "postgresql":
        pytest.skip("SQLite has no TRUNCATE")
    with pytest.raises(DBAPIError, match="append-only"):
        with clinic.begin() as connection:
            connection.execute(text("TRUNCATE audit_log"))


def test_audit_entries_newest_first_with_paging_and_masked_contacts(clinic):
    ids = [review.audit(clinic, "bob", "status_change", f"handoff-{n}", f"entry {n}", now=T0) for n in range(3)]
    newest = review.audit(clinic, "bob", "reveal_contact", "visitor-2", "called +18505550142, wrote maria@example.com")
    entries = review.audit_entries(clinic, limit=2)
    assert [e.id for e in entries] == [newest, ids[2]]
    assert entries[0].detail == "called (850) ***-**42, wrote m***@example.com"
    assert entries[0].at.utcoffset() == timedelta(0)
    assert [e.id for e in review.audit_entries(clinic, limit=5, before_id=ids[2])][:2] == [ids[1], ids[0]]
    exported = list(csv.DictReader(io.StringIO(review.audit_csv(entries))))
    assert exported[0]["action"] == "reveal_contact" and "8505550142" not in review.audit_csv(entries)
    with pytest.raises(ValueError):
        review.audit(clinic, "", "x", "")


def test_status_events_backfilled_from_contacted_requests(tmp_path):
    """A database migrated to 0004 with a request marked contacted on the command line keeps that status."""
    from alembic import command

    from clinic_assistant.store.schema import alembic_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic_config(url), "0004")
    engine = engine_for(url)
    reference = submit_consultation(engine, a_consultation("visitor-old"), T0)
    with engine.begin() as connection:
        update = text("UPDATE consultation_requests SET status = 'contacted', contacted_at = :at")
        connection.execute(update, {"at": T0.replace(tzinfo=None)})  # as SQLite stores UTC times
    upgrade(url)
    [row] = review.requests(engine)
    assert (row.reference, row.status, row.status_by, row.status_at) == (reference, "contacted", "command line", T0)


# ---- Queue ---------------------------------------------------------------------------------------------------------


def test_queue_puts_the_most_urgent_first(console):
    c = console
    plain = c.talk(T0)
    unsure = c.talk(T0 + timedelta(minutes=1), "wat", intent="symptoms", confidence=0.41)
    requested = c.talk(T0 + timedelta(minutes=2))
    flagged = c.talk(T0 + timedelta(minutes=3))
    newer_plain = c.talk(T0 + timedelta(minutes=4))
    reviewed = c.talk(T0 + timedelta(minutes=5))
    record_flag(c.clinic, a_flag(flagged))
    record_handoff(c.clinic, a_handoff(requested))
    c.index()
    review.mark_reviewed(c.clinic, reviewed, "alice", now=T0 + timedelta(hours=1))

    rows = c.queue().rows
    assert [r.conversation_id for r in rows] == [flagged, requested, unsure, newer_plain, plain, reviewed]
    assert [r.priority for r in rows] == [0, 1, 2, 3, 3, 4]
    first = rows[0]
    assert (first.flag_kind, first.open_requests, first.user_turns, first.channel) == ("crisis", 0, 1, c.channel)
    assert first.first_message == "What are the symptoms of CRPS?"
    assert first.last_at == T0 + timedelta(minutes=3, milliseconds=10) and first.last_at.utcoffset() == timedelta(0)
    assert first.started_at == T0 + timedelta(minutes=3)
    assert rows[2].low_confidence == 1 and rows[1].open_requests == 1
    assert rows[5].reviewed_at == T0 + timedelta(hours=1)


def test_keyset_pages_cover_the_queue_once_in_order(console):
    c = console
    # Ties on the last message's time too: the conversation id orders them.
    same = T0 + timedelta(minutes=30)
    for n in range(4):
        c.talk(T0 + timedelta(minutes=n))
        c.talk(same)
    flagged = c.talk(T0 + timedelta(minutes=9))
    record_flag(c.clinic, a_flag(flagged, "emergency"))
    c.index()
    everything = c.queue().rows
    assert len(everything) == 9

    seen, after = [], None
    while True:
        page = review.queue(c.clinic, review.QueueFilters(channel=c.channel), after, limit=2)
        seen += [row.conversation_id for row in page.rows]
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == [row.conversation_id for row in everything]
    tied = [row.conversation_id for row in everything if row.last_at == same + timedelta(milliseconds=10)]
    assert tied == sorted(tied) and len(tied) == 4
    assert len(c.queue().rows) == 9 and c.queue().next_after is None


@pytest.mark.parametrize("cursor", ["nonsense", "W10", "WzEsICJ4IiwgMl0", "%%%"])
def test_a_tampered_cursor_is_a_value_error(console, cursor):
    with pytest.raises(ValueError):
        review.queue(console.clinic, review.QueueFilters(), cursor)


def test_filters(console):
    c = console
    day1, day2 = T0, T0 + timedelta(days=1)
    crisis = c.talk(day1, "I want to end it all", intent="crisis", response=None)
    emergency = c.talk(day1 + timedelta(hours=1), "my chest hurts", intent="emergency", response=None)
    both = c.talk(day1 + timedelta(hours=2), "It burns all the time")
    ketamine = c.talk(day2, "Can ketamine help?", intent="ketamine", response="ketamine/overview")
    record_flag(c.clinic, a_flag(crisis, "crisis"))
    record_flag(c.clinic, a_flag(emergency, "emergency"))
    record_flag(c.clinic, a_flag(both, "emergency"))
    record_flag(c.clinic, a_flag(both, "crisis"))
    c.index()
    review.tag(c.clinic, ketamine, "follow up", "alice")
    review.mark_reviewed(c.clinic, crisis, "alice", now=day2 + timedelta(hours=1))

    assert set(c.ids(flag="any")) == {crisis, emergency, both}
    assert set(c.ids(flag="crisis")) == {crisis, both}
    assert set(c.ids(flag="emergency")) == {emergency, both}
    assert c.ids(intent="ketamine") == [ketamine]
    assert c.ids(tag="follow up") == [ketamine]
    assert c.ids(review="reviewed") == [crisis]
    assert set(c.ids(review="unreviewed")) == {emergency, both, ketamine}
    assert set(c.ids(date_from=date(2031, 3, 4), date_to=date(2031, 3, 4))) == {crisis, emergency, both}
    assert c.ids(date_from=date(2031, 3, 5)) == [ketamine]
    assert c.ids(date_to=date(2031, 3, 3)) == []
    assert c.ids(text="ketamine") == [ketamine]
    assert c.ids(text="KETAMINE", intent="ketamine", tag="follow up") == [ketamine]
    assert c.ids(text="50% off") == []  # LIKE wildcards are matched literally
    if c.clinic.dialect.name == "postgresql":
        assert c.ids(text="burning") == [both]  # full text search: "burns" and "burning" share a stem
    else:
        assert c.ids(text="urns all") == [both]  # small installs: a substring
    assert review.queue(c.clinic, review.QueueFilters(channel="no-such-channel")).rows == []
    with pytest.raises(ValueError):
        review.QueueFilters(flag="bogus")
    with pytest.raises(ValueError):
        review.QueueFilters(review="maybe")


def test_filter_menus(console):
    c = console
    sender = c.talk(T0, "Can ketamine help?", intent="ketamine", response="ketamine/overview")
    c.index()
    review.tag(c.clinic, sender, f"menu-{c.channel}", "alice")
    assert c.channel in review.channels(c.clinic)
    assert "ketamine" in review.intents(c.clinic)
    assert f"menu-{c.channel}" in review.tags(c.clinic)
    assert review.channels(c.clinic) == sorted(review.channels(c.clinic))


def test_an_unreachable_clinic_database_is_unavailable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    engine = engine_for(f"postgresql://postgres@127.0.0.1:{closed}/clinic")
    for call in (
        lambda: review.queue(engine, review.QueueFilters()),
        lambda: review.requests(engine),
        lambda: review.audit(engine, "alice", "view_transcript", "visitor-1"),
    ):
        with pytest.raises(StoreUnavailable):
            call()


# ---- Transcript, tags, notes, reviews ------------------------------------------------------------------------------


def test_transcript_reads_the_tracker_with_the_clinic_data(console):
    c = console
    sender = c.conversation()
    t = c.tracker
    t.session(sender, T0)
    t.slot(sender, "session_started_metadata", {"sms_from": "+18505550142"}, T0)
    first = t.exchange(sender, "What are the symptoms of CRPS?", T0 + timedelta(seconds=1), channel=c.channel)
    t.user(sender, "call me on 850 555 0142", T0 + timedelta(seconds=5), intent="nlu_fallback", confidence=0.45,
           response=None, channel=c.channel)
    t.bot(sender, "Sorry, I'm not sure I understood.", T0 + timedelta(seconds=6), "utter_clarify")
    t.slot(sender, "consult_phone", "+18505550199", T0 + timedelta(seconds=7))
    t.slot(sender, "consult_phone", "+18505550142", T0 + timedelta(seconds=8))
    record_flag(c.clinic, a_flag(sender, "emergency", T0))
    reference = submit_consultation(c.clinic, a_consultation(sender), T0)
    c.index()
    review.tag(c.clinic, sender, "callback", "alice")
    note_id = review.add_note(c.clinic, sender, "  Called back, all fine.  ", "alice", now=T0 + timedelta(hours=1))
    review.mark_reviewed(c.clinic, sender, "bob", now=T0 + timedelta(hours=2))

    found = review.transcript(c.tracker.engine, c.clinic, sender)
    assert found.conversation_id == sender and found.channel == c.channel
    assert [(turn.speaker, turn.text) for turn in found.turns] == [
        ("patient", "What are the symptoms of CRPS?"),
        ("assistant", "Here is what the article says."),
        ("patient", "call me on 850 555 0142"),
        ("assistant", "Sorry, I'm not sure I understood."),
    ]
    patient, answer, fallback, _ = found.turns
    assert (patient.event_id, patient.intent, patient.confidence, patient.response, patient.channel) == (
        first, "symptoms", 0.93, "symptoms/overview", c.channel
    )
    assert patient.at == T0 + timedelta(seconds=1) and patient.at.utcoffset() == timedelta(0)
    assert answer.response == "utter_symptoms/overview" and answer.intent is None
    assert (fallback.intent, fallback.response) == ("nlu_fallback", None)
    assert found.slots["consult_phone"] == "+18505550142"  # the last value
    assert found.slots["session_started_metadata"] == {"sms_from": "+18505550142"}
    assert [(f.kind, f.message) for f in found.flags] == [("emergency", "I can't go on like this")]
    assert [(r.kind, r.reference, r.status, r.contact) for r in found.requests] == [
        ("consultation", reference, "new", "+18505550142, maria@example.com")
    ]
    assert found.tags == ["callback"]
    assert [(n.id, n.author, n.text, n.at) for n in found.notes] == [
        (note_id, "alice", "Called back, all fine.", T0 + timedelta(hours=1))
    ]
    assert (found.reviewed_at, found.reviewed_by) == (T0 + timedelta(hours=2), "bob")


def test_transcript_of_an_unknown_conversation(console):
    with pytest.raises(review.ConversationNotFound):
        review.transcript(console.tracker.engine, console.clinic, "nobody")


def test_tags_notes_and_reviews_need_an_indexed_conversation(console):
    for change in (
        lambda: review.tag(console.clinic, "nobody", "x", "alice"),
        lambda: review.untag(console.clinic, "nobody", "x", "alice"),
        lambda: review.add_note(console.clinic, "nobody", "x", "alice"),
        lambda: review.mark_reviewed(console.clinic, "nobody", "alice"),
    ):
        with pytest.raises(review.ConversationNotFound):
            change()


def test_tagging_twice_and_untagging(console):
    c = console
    sender = c.talk(T0)
    c.index()
    review.tag(c.clinic, sender, "  needs   follow-up ", "alice")
    review.tag(c.clinic, sender, "needs follow-up", "bob")
    review.tag(c.clinic, sender, "ketamine", "bob")
    assert c.queue().rows[0].tags == ["ketamine", "needs follow-up"]
    review.untag(c.clinic, sender, "needs follow-up", "alice")
    review.untag(c.clinic, sender, "never there", "alice")
    assert c.queue().rows[0].tags == ["ketamine"]
    for bad in ("", "   ", "x" * 65):
        with pytest.raises(ValueError):
            review.tag(c.clinic, sender, bad, "alice")
    with pytest.raises(ValueError):
        review.add_note(c.clinic, sender, "  ", "alice")


def test_a_reviewed_conversation_comes_back_when_something_new_happens(console):
    c = console
    sender = c.talk(T0)
    c.index()
    review.mark_reviewed(c.clinic, sender, "alice", now=T0 + timedelta(minutes=5))
    assert (c.row(sender).priority, c.row(sender).reviewed_by) == (4, "alice")

    c.tracker.exchange(sender, "and the swelling?", T0 + timedelta(minutes=10), channel=c.channel)
    c.index()
    assert c.row(sender).priority == 3  # a new message after the review
    review.mark_reviewed(c.clinic, sender, "alice", now=T0 + timedelta(minutes=20))
    assert c.row(sender).priority == 4

    record_flag(c.clinic, a_flag(sender, "crisis", T0 + timedelta(minutes=30)))
    c.index()
    assert c.row(sender).priority == 0  # a new flag after the review
    assert c.ids(review="unreviewed") == [sender]


# ---- Corrections ---------------------------------------------------------------------------------------------------


def test_corrections_export_as_rasa_nlu_yaml(console):
    c = console
    sender = c.conversation()
    review.add_correction(c.clinic, sender, 11, "it  burns\nall day", "symptoms", "symptoms/pain", "alice", T0)
    review.add_correction(c.clinic, sender, 12, "can i get ketamine", "ketamine", None, "alice", T0)
    review.add_correction(c.clinic, sender, 13, "hello there", "greet", None, "bob", T0)
    # The same message corrected again: the newest correction counts.
    newest = review.add_correction(c.clinic, sender, 13, "hello there", "goodbye", None, "bob", T0 + timedelta(1))

    mine = [x for x in review.corrections(c.clinic) if x.conversation_id == sender]
    assert mine[0].id == newest and mine[0].at == T0 + timedelta(1)
    exported = review.corrections_yaml(c.clinic)
    assert exported.startswith(review.EXPORT_NOTICE + 'version: "3.1"\nnlu:\n')  # what was replaced, said first
    nlu = {item["intent"]: item["examples"] for item in yaml.safe_load(exported)["nlu"]}
    assert "- it burns all day\n" in nlu["symptoms/pain"]
    assert "- can i get ketamine\n" in nlu["ketamine"]
    assert "- hello there\n" in nlu["goodbye"] and "hello there" not in nlu.get("greet", "")
    assert "    - it burns all day\n" in exported  # Rasa's layout: a literal block of "- text" lines


def test_control_characters_in_a_patient_message_keep_the_export_valid_yaml(console):
    sender = console.conversation()
    review.add_correction(console.clinic, sender, 21, "it \x07beeps\x1b[31m all\x00 day", "symptoms", None, "alice", T0)
    nlu = {item["intent"]: item["examples"] for item in yaml.safe_load(review.corrections_yaml(console.clinic))["nlu"]}
    assert "- it beeps[31m all day\n" in nlu["symptoms"]


def test_a_nul_character_in_a_patient_message_is_indexed_without_it(console):
    sender = console.conversation()
    console.tracker.exchange(sender, "my hand\x00 burns", T0, channel=console.channel)
    console.index()
    assert console.ids(text="burns") == [sender]


@pytest.mark.parametrize(
    "intent, response",
    [("", None), ("symptoms", "ketamine/overview"), ("symptoms", "symptoms/"), ("a b", None), ("symptoms/x", None)],
)
def test_invalid_corrections_are_refused(console, intent, response):
    with pytest.raises(ValueError):
        review.add_correction(console.clinic, "visitor-1", 1, "text", intent, response, "alice")


def test_untrained_corrections_are_those_not_yet_in_the_data(console, tmp_path):
    c = console
    sender = c.conversation()
    (tmp_path / "nlu").mkdir()
    (tmp_path / "nlu" / "symptoms.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: symptoms/pain\n  examples: |\n    - My [left hand](body_part) BURNS\n'
        "    - what does the pain feel like\n- intent: greet\n  examples: |\n    - hello there\n"
    )
    (tmp_path / "responses.yml").write_text('version: "3.1"\nresponses:\n  utter_x:\n  - text: hi\n')
    review.add_correction(c.clinic, sender, 1, "my left hand  burns", "symptoms", "symptoms/pain", "alice")
    review.add_correction(c.clinic, sender, 2, "hello there", "greet", None, "alice")
    review.add_correction(c.clinic, sender, 3, "hello there", "goodbye", None, "alice")  # in the data, elsewhere
    review.add_correction(c.clinic, sender, 4, "does it spread", "symptoms", "symptoms/spread", "alice")
    untrained = [x for x in review.untrained_corrections(c.clinic, tmp_path) if x.conversation_id == sender]
    assert [x.message_id for x in untrained] == [4, 3]


# ---- Requests ------------------------------------------------------------------------------------------------------


def test_requests_of_every_kind_with_their_status(console):
    c = console
    consult, handoff, reach = c.conversation(), c.conversation(), c.conversation()
    reference = submit_consultation(c.clinic, a_consultation(consult), T0)
    record_handoff(c.clinic, a_handoff(handoff, T0 + timedelta(minutes=1)))
    record_all(c.clinic, [a_reach_out(reach, T0 + timedelta(minutes=2))])
    mine = {r.conversation_id: r for r in review.requests(c.clinic) if r.conversation_id in (consult, handoff, reach)}
    assert [r.kind for r in sorted(mine.values(), key=lambda r: r.created_at, reverse=True)] == [
        "reach_out", "handoff", "consultation"
    ]
    row = mine[consult]
    assert (row.reference, row.name, row.contact, row.status, row.status_by, row.status_at) == (
        reference, "María López", "+18505550142, maria@example.com", "new", None, None
    )
    assert (row.delivery_status, row.delivery_attempts, row.last_error) == ("pending", 0, None)
    assert (mine[handoff].name, mine[handoff].contact) == ("Sam Lee", "sam@example.com")
    assert mine[handoff].delivery_status == ""
    assert (mine[reach].name, mine[reach].contact, mine[reach].reference) == ("", "+18505550177", "")

    review.set_request_status(c.clinic, "handoff", mine[handoff].id, "contacted", "alice", now=T0 + timedelta(hours=1))
    review.set_request_status(c.clinic, "handoff", mine[handoff].id, "closed", "bob", now=T0 + timedelta(hours=2))
    [changed] = [r for r in review.requests(c.clinic, "handoff", "closed") if r.conversation_id == handoff]
    assert (changed.status, changed.status_by, changed.status_at) == ("closed", "bob", T0 + timedelta(hours=2))
    assert handoff not in [r.conversation_id for r in review.requests(c.clinic, "handoff", "new")]
    assert {r.kind for r in review.requests(c.clinic, "reach_out")} == {"reach_out"}


def test_set_request_status_refuses_unknown_requests_and_values(console):
    with pytest.raises(review.RequestNotFound):
        review.set_request_status(console.clinic, "handoff", 10**9, "closed", "alice")
    with pytest.raises(ValueError):
        review.set_request_status(console.clinic, "handoff", 1, "lost", "alice")
    with pytest.raises(ValueError):
        review.set_request_status(console.clinic, "letter", 1, "closed", "alice")
    with pytest.raises(ValueError):
        review.requests(console.clinic, status="lost")


def test_a_consultation_status_updates_the_command_lines_status_and_the_queue(console):
    c = console
    sender = c.talk(T0)
    reference = submit_consultation(c.clinic, a_consultation(sender), T0)
    c.index()
    assert (c.row(sender).open_requests, c.row(sender).priority) == (1, 1)
    consult_id = request_id(c.clinic, "consultation", sender)

    review.set_request_status(c.clinic, "consultation", consult_id, "scheduled", "alice", now=T0 + timedelta(hours=1))
    stored = get_request(c.clinic, reference)
    assert (stored.status, stored.contacted_at) == ("contacted", T0 + timedelta(hours=1))
    review.set_request_status(c.clinic, "consultation", consult_id, "closed", "alice", now=T0 + timedelta(hours=2))
    assert (c.row(sender).open_requests, c.row(sender).priority) == (0, 3)  # no indexer run needed


def test_mark_contacted_on_the_command_line_adds_one_status_event(console):
    c = console
    sender = c.talk(T0)
    reference = submit_consultation(c.clinic, a_consultation(sender), T0)
    consult_id = request_id(c.clinic, "consultation", sender)
    mark_contacted(c.clinic, reference, T0 + timedelta(hours=1))
    mark_contacted(c.clinic, reference, T0 + timedelta(hours=2))  # the first time counts
    [row] = [r for r in review.requests(c.clinic, "consultation") if r.id == consult_id]
    assert (row.status, row.status_by, row.status_at) == ("contacted", "command line", T0 + timedelta(hours=1))
    with c.clinic.connect() as connection:
        events = connection.execute(
            select(func.count()).where(
                request_status_events.c.request_kind == "consultation", request_status_events.c.request_id == consult_id
            )
        ).scalar_one()
    assert events == 1


def test_requests_csv_defuses_formulas(console):
    c = console
    sender = c.conversation()
    submit_consultation(c.clinic, a_consultation(sender), T0)
    rows = [r for r in review.requests(c.clinic) if r.conversation_id == sender]
    exported = review.requests_csv(rows)
    [record] = list(csv.DictReader(io.StringIO(exported)))
    assert list(record)[:4] == ["kind", "id", "reference", "conversation_id"]
    assert record["contact"] == "'+18505550142, maria@example.com"
    assert record["created_at"] == "2031-03-04T10:00:00+00:00"
    assert record["status_by"] == "" and record["delivery_status"] == "pending"


# ---- Dashboard -----------------------------------------------------------------------------------------------------


def test_dashboard_figures(console):
    c = console
    # A window of its own, far from the other tests' data in the shared database.
    now = datetime(2093, 6, 10, 12, 0, tzinfo=timezone.utc)
    before = review.dashboard(c.clinic, days=3, now=now)
    day = now - timedelta(days=1)
    a = c.talk(day, "What are the symptoms?", "what is ketamine")
    b = c.talk(day + timedelta(minutes=5), "blah", intent="nlu_fallback", confidence=0.4, response=None)
    c.talk(now - timedelta(days=2), "Can ketamine help?", intent="ketamine", response="ketamine/overview")
    c.talk(now - timedelta(days=10), "too old for the window")
    record_flag(c.clinic, a_flag(a, "crisis", day))
    record_flag(c.clinic, a_flag(b, "emergency", day))
    record_handoff(c.clinic, a_handoff(a, day))
    record_handoff(c.clinic, a_handoff(b, day))
    c.index()
    review.set_request_status(c.clinic, "handoff", request_id(c.clinic, "handoff", a), "contacted", "alice", now=day)
    after = review.dashboard(c.clinic, days=3, now=now)

    assert (day.date(), c.channel, 2) in after.per_day_by_channel
    assert ((now - timedelta(days=2)).date(), c.channel, 1) in after.per_day_by_channel
    assert not [row for row in after.per_day_by_channel if row[1] == c.channel and row[0] < (now - timedelta(3)).date()]
    assert dict(after.top_intents)["symptoms"] - dict(before.top_intents).get("symptoms", 0) == 2
    assert after.crisis_flags - before.crisis_flags == 1 and after.emergency_flags - before.emergency_flags == 1
    assert after.requests - before.requests == 2 and after.contacted - before.contacted == 1
    if before.fallback_rate == 0 and not before.per_day_by_channel:
        assert after.fallback_rate == pytest.approx(1 / 4)  # one patient turn of four was not understood


# ---- Masking -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "original, masked",
    [
        ("call me at +18505550142", "call me at (850) ***-**42"),
        ("my cell is 850-555-0142 thanks", "my cell is (850) ***-**42 thanks"),
        ("(850) 555 0142 or maria.lopez@example.com", "(850) ***-**42 or m***@example.com"),
        ("in London: +44 20 7946 0958", "in London: +44 20 **** **58"),
        ("pain 7/10 since 2019, 3 kids", "pain 7/10 since 2019, 3 kids"),
        ("call 911 or 988", "call 911 or 988"),
    ],
)
def test_mask_contacts(original, masked):
    assert mask_contacts(original) == masked


def test_mask_slot_masks_contact_slots_whole():
    assert mask_slot("consult_phone", "+18505550142") == "(850) ***-**42"
    assert mask_slot("handoff_contact", "not a number") == "***"
    assert mask_slot("consult_name", "María López") == "M***"
    assert mask_slot("session_started_metadata", {"sms_from": "+18505550142", "x": 1}) == {"sms_from": "***", "x": 1}
    assert mask_slot("consult_help_with", "reach me at a@b.org") == "reach me at a***@b.org"
    assert mask_slot("clinic_name", "the Crane Center") == "the Crane Center"


# A phone number run into more digits, or followed by a time, is still a phone number.
@pytest.mark.parametrize(
    "original, masked",
    [
        ("850 555 0142 3pm works", "(850) ***-**42 3pm works"),
        ("8505550142123", "(850) ***-**42***"),
        ("my number 850-555-0142-123", "my number (850) ***-**42-***"),
        ("tel 850555014299, ask for me", "tel (850) ***-**42**, ask for me"),
        ("at 10:30 8505550142123", "at 10:30 (850) ***-**42***"),
        ("phone:8505550142123", "phone:(850) ***-**42***"),
        ("+44 20 7946 0958 123", "+44 20 **** **58 ***"),
        ("12-05-2024 8505550142", "12-05-2024 (850) ***-**42"),
    ],
)
def test_mask_contacts_finds_numbers_run_into_more_digits(original, masked):
    assert mask_contacts(original) == masked


# What must stay as written: times, dates, pain scores, counts, ids and everyday "at".
@pytest.mark.parametrize(
    "text",
    [
        "pain 9/10 at 10:30 on 12/05/2024",
        "it started 2024-05-12 10 am, about 3pm it was 7/10",
        "born 1985, 3 kids, 12 pills a day, 4 times a week, for 20-30 minutes",
        "call 911 or 988",
        "dose 0.5 mg at 10.30 and 14.45",
        "conversation 123e4567-e89b-12d3-a456-426614174000 and order 10234567",
        "I was at work. Then I left at 5.",
        "see you at 3.30, we are at home",
    ],
)
def test_mask_contacts_leaves_times_dates_scores_and_counts(text):
    assert mask_contacts(text) == text


@pytest.mark.parametrize(
    "original",
    [
        "maria @ example.com",
        "maria (at) example (dot) com",
        "maria at example dot com",
        "Maria AT example DOT com",
        "maria[at]example[dot]com",
        "maria at example.com",
        "maria @ example . com",
    ],
)
def test_mask_contacts_masks_written_out_email_addresses(original):
    assert mask_contacts(f"write to {original} please") == "write to m***@example.com please".replace(
        "m***", original[0] + "***"
    )


def test_names_are_masked_whole_and_word_by_word_in_any_case():
    names = ["Maria Lopez", "It's Jo"]
    assert mask_contacts("Thanks, Maria Lopez. What's the number?", names) == "Thanks, M***. What's the number?"
    assert mask_contacts("it's maria lopez, or just lopez", names) == "it's m***, or just l***"
    assert mask_contacts("Maria Lopez; +18505550142; about: my hand", names) == "M***; (850) ***-**42; about: my hand"
    # A read-back cuts long names short: the cut word is masked too.
    assert mask_contacts("Request: Maria Fernanda Hernan…; no email", ["Maria Fernanda Hernandez"]) == (
        "Request: M*** F*** H***…; no email"
    )
    # Only the name's own words: "it's" alone, and other words, stay.
    assert mask_contacts("it's Jo. It's fine, Joanna", names) == "i***. It's fine, Joanna"
    assert mask_contacts("Maria went home", []) == "Maria went home"


def test_mask_slot_masks_names_in_other_slots():
    assert mask_slot("consult_summary", "Maria Lopez; +18505550142", ["Maria Lopez"]) == "M***; (850) ***-**42"
    assert mask_slot("consult_name", "Maria Lopez", ["Maria Lopez"]) == "M***"


def test_redact_puts_placeholders_that_rasa_reads_as_text():
    text = "I'm Maria Lopez, 850-555-0142(cell) or maria (at) example (dot) com, pain 9/10 at 3pm"
    assert redact(text, ["Maria Lopez"]) == "I'm [name], [phone] (cell) or [email], pain 9/10 at 3pm"
    assert redact("call 8505550142123 or maria@example.com") == "call [phone]*** or [email]"


def test_every_name_the_forms_held_is_known(console):
    """A name corrected, or cleared once the request was sent, is still masked in the messages that hold it."""
    c = console
    sender = c.conversation()
    c.tracker.session(sender, T0)
    c.tracker.exchange(sender, "I'm Maria Lopez", T0, channel=c.channel)
    c.tracker.slot(sender, "consult_name", "Maria Lopez", T0)
    c.tracker.slot(sender, "consult_name", "Mary", T0 + timedelta(seconds=1))
    c.tracker.slot(sender, "consult_name", None, T0 + timedelta(seconds=2))
    c.tracker.slot(sender, "consult_help_with", "not a name", T0 + timedelta(seconds=2))
    record_handoff(c.clinic, a_handoff(sender))
    c.index()
    found = review.transcript(c.tracker.engine, c.clinic, sender)
    assert sorted(found.names) == ["Maria Lopez", "Mary", "Sam Lee"]
    assert review.known_names(c.clinic, [sender]) == {sender: ["Sam Lee"]}  # without the tracker: the requests'
    assert sorted(review.known_names(c.clinic, [sender], c.tracker.engine)[sender]) == sorted(found.names)


def test_the_corrections_export_replaces_contacts_and_names_with_placeholders(console, tmp_path):
    c = console
    sender = c.conversation()
    c.tracker.session(sender, T0)
    message = c.tracker.exchange(sender, "I'm Maria, call 850 555 0142 3pm or maria at example dot com", T0)
    c.tracker.slot(sender, "consult_name", "Maria", T0)
    review.add_correction(c.clinic, sender, message, "I'm Maria, call 850 555 0142 3pm or maria at example dot com",
                          "request_consultation", None, "alice", T0)
    exported = review.corrections_yaml(c.clinic, c.tracker.engine)
    nlu = {item["intent"]: item["examples"] for item in yaml.safe_load(exported)["nlu"]}
    assert "- I'm [name], call [phone] 3pm or [email]\n" in nlu["request_consultation"]
    assert "I'm Maria" not in exported and "555 0142 3pm" not in exported and "at example dot com" not in exported
    # Once that example is in the data, the correction is no longer "not yet in the training data".
    assert message in [x.message_id for x in review.untrained_corrections(c.clinic, tmp_path, c.tracker.engine)]
    (tmp_path / "nlu.yml").write_text(exported)
    assert message not in [x.message_id for x in review.untrained_corrections(c.clinic, tmp_path, c.tracker.engine)]
