"""The console's indexer reading a Rasa-shaped tracker store into the clinic database, on SQLite and PostgreSQL."""

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import delete, select, text

from clinic_assistant.console.indexer import index_new_events, safe_watermark, tracker_source
from clinic_assistant.store import review
from clinic_assistant.store.consultations import record_handoff, submit_consultation
from clinic_assistant.store.db import StoreUnavailable, engine_for, record_flag
from clinic_assistant.store.tables import (
    conversation_intents,
    conversation_messages,
    index_watermarks,
)
from tests import test_console_store as shared
from tests.test_console_store import EVENTS, T0, a_consultation, a_flag, a_handoff, request_id

# The store tests' fixtures: a Rasa-shaped tracker store and the clinic database per backend.
clinic, tracker, console = shared.clinic, shared.tracker, shared.console


def messages_of(console, sender):
    with console.clinic.connect() as connection:
        return connection.execute(
            select(conversation_messages).where(conversation_messages.c.conversation_id == sender).order_by("id")
        ).all()


def intents_of(console, sender):
    with console.clinic.connect() as connection:
        query = select(conversation_intents.c.intent).where(conversation_intents.c.conversation_id == sender)
        return sorted(connection.execute(query).scalars())


def test_a_conversation_is_indexed_with_its_figures(console):
    c, t = console, console.tracker
    sender = c.conversation()
    t.session(sender, T0)
    first = t.exchange(sender, "What are the symptoms of CRPS?", T0 + timedelta(seconds=1), channel=c.channel)
    # Not understood: nlu_fallback, then action_clarify's reply. One patient turn, counted once.
    t.user(sender, "blah blah", T0 + timedelta(seconds=5), intent="nlu_fallback", confidence=0.45, response=None,
           channel=c.channel)
    t.action(sender, "action_clarify", T0 + timedelta(seconds=6))
    t.bot(sender, "Sorry, I'm not sure I understood. Did you mean one of these?", T0 + timedelta(seconds=6),
          "utter_clarify")
    # Understood with low confidence, and answered as if not understood.
    t.user(sender, "ketamine drip?", T0 + timedelta(seconds=9), intent="ketamine", confidence=0.55,
           response="ketamine/overview", channel=c.channel)
    t.bot(sender, "Sorry, I didn't understand that.", T0 + timedelta(seconds=10), "utter_not_understood")
    t.slot(sender, "consult_phone", "+18505550142", T0 + timedelta(seconds=11))

    assert c.index() > 0
    row = c.row(sender)
    assert (row.channel, row.user_turns, row.fallbacks, row.low_confidence) == (c.channel, 3, 2, 2)
    assert (row.started_at, row.last_at) == (T0 + timedelta(seconds=1), T0 + timedelta(seconds=10))
    assert (row.flag_kind, row.open_requests, row.priority, row.reviewed_at) == (None, 0, 2, None)
    assert intents_of(c, sender) == ["ketamine", "nlu_fallback", "symptoms"]
    stored = messages_of(c, sender)
    assert [(m.speaker, m.text) for m in stored][:2] == [
        ("patient", "What are the symptoms of CRPS?"), ("assistant", "Here is what the article says.")
    ]
    assert (stored[0].id, stored[0].intent, stored[0].confidence, stored[0].response) == (
        first, "symptoms", 0.93, "symptoms/overview"
    )
    assert stored[3].response == "utter_clarify" and len(stored) == 6
    assert [r.first_message for r in c.queue().rows] == ["What are the symptoms of CRPS?"]


def test_indexing_is_idempotent(console):
    c = console
    senders = [c.talk(T0 + timedelta(minutes=n), "hello", "what is crps") for n in range(3)]
    c.index()
    before = [c.row(s) for s in senders], [messages_of(c, s) for s in senders]
    assert c.index() == 0
    # Read everything again from the start, as a second indexer with a lost watermark would.
    with c.clinic.begin() as connection:
        connection.execute(delete(index_watermarks).where(index_watermarks.c.name == tracker_source(c.tracker.url)))
    assert c.index() > 0  # events passed again, nothing new written
    assert ([c.row(s) for s in senders], [messages_of(c, s) for s in senders]) == before


def test_small_batches_index_everything(console):
    c = console
    senders = [c.talk(T0 + timedelta(minutes=n), "one", "two") for n in range(4)]
    total, calls = 0, 0
    while True:
        done = index_new_events(c.tracker.engine, c.clinic, batch=3)
        calls += 1
        total += done
        if not done:
            break
    assert calls > 5
    assert [c.row(s).user_turns for s in senders] == [2, 2, 2, 2]
    assert c.index() == 0


def test_a_conversation_without_patient_messages_is_not_in_the_queue(console):
    c, t = console, console.tracker
    sender = c.conversation()
    t.session(sender, T0)
    t.bot(sender, "Automated assistant, general information only.", T0, "utter_notice")
    c.index()
    assert c.row(sender) is None
    t.exchange(sender, "hi", T0 + timedelta(minutes=1), channel=c.channel)
    c.index()
    assert (c.row(sender).user_turns, c.row(sender).started_at) == (1, T0)


def test_new_flags_requests_and_statuses_refresh_the_queue(console):
    c = console
    sender = c.talk(T0)
    c.index()
    assert c.row(sender).priority == 3

    record_handoff(c.clinic, a_handoff(sender))
    c.index()
    assert (c.row(sender).open_requests, c.row(sender).priority) == (1, 1)

    submit_consultation(c.clinic, a_consultation(sender), T0)
    c.index()
    assert c.row(sender).open_requests == 2

    record_flag(c.clinic, a_flag(sender, "emergency"))
    c.index()
    assert (c.row(sender).flag_kind, c.row(sender).priority) == ("emergency", 0)
    record_flag(c.clinic, a_flag(sender, "crisis"))
    c.index()
    assert c.row(sender).flag_kind == "crisis"

    # A status written elsewhere (the `requests` command line, another console) reaches the queue too.
    handoff = request_id(c.clinic, "handoff", sender)
    with c.clinic.begin() as connection:
        review.add_status_event(connection, "handoff", handoff, "closed", "command line", T0)
    c.index()
    assert c.row(sender).open_requests == 1


def test_a_fresh_gap_in_the_ids_holds_the_watermark_until_filled(console):
    c, t = console, console.tracker
    sender = c.conversation()
    now = T0.timestamp() + 1
    t.user(sender, "first", T0, channel=c.channel, event_id=1)
    t.user(sender, "third", T0, channel=c.channel, event_id=3)  # 2 is still being committed
    assert index_new_events(t.engine, c.clinic, now=now) == 3  # 1 passed; 1 and 3 written
    assert index_new_events(t.engine, c.clinic, now=now) == 0
    assert [m.text for m in messages_of(c, sender)] == ["first", "third"]

    t.user(sender, "second", T0, channel=c.channel, event_id=2)
    assert index_new_events(t.engine, c.clinic, now=now) == 3  # 2 written, then 2 and 3 passed
    assert [m.text for m in messages_of(c, sender)] == ["first", "second", "third"]
    assert c.row(sender).user_turns == 3


def test_an_old_gap_is_skipped():
    assert safe_watermark(10, [(11, 0.0), (13, 100.0), (14, 100.0)], now=200.0) == 14  # rolled back long ago
    assert safe_watermark(10, [(11, 0.0), (13, 190.0), (14, 190.0)], now=200.0) == 11
    assert safe_watermark(10, [(12, 190.0)], now=200.0) == 10
    assert safe_watermark(10, [], now=200.0) == 10


def test_two_indexers_at_once_index_everything_once(console):
    c = console
    senders = [c.talk(T0 + timedelta(minutes=n), "one", "two", "three") for n in range(20)]
    errors = []

    def work():
        try:
            while index_new_events(c.tracker.engine, c.clinic, batch=7):
                pass
        except Exception as error:  # reported below: a thread's exception would be lost
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert [c.row(s).user_turns for s in senders] == [3] * 20
    assert sum(len(messages_of(c, s)) for s in senders) == 20 * 6


def test_a_recreated_tracker_store_replaces_reused_ids(console):
    c, t = console, console.tracker
    old = c.talk(T0, "hello")
    c.index()
    with t.engine.begin() as connection:
        connection.execute(delete(EVENTS))
        if t.engine.dialect.name == "postgresql":
            connection.execute(text("ALTER SEQUENCE events_id_seq RESTART WITH 1"))
    assert c.index() == 0  # the running console notices the emptied store
    new = c.talk(T0 + timedelta(days=1), "a whole new conversation", "with two messages")
    c.index()
    assert c.row(new).user_turns == 2
    assert c.row(old) is None and messages_of(c, old) == []


def test_a_tracker_without_its_table_yet_has_nothing_to_index(console, tmp_path):
    assert index_new_events(engine_for(f"sqlite:///{tmp_path / 'fresh.db'}"), console.clinic) == 0


def test_an_unreachable_tracker_is_unavailable(console):
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        index_new_events(engine_for("postgresql://postgres@127.0.0.1:9/tracker"), console.clinic)
    assert time.monotonic() - started < 5

