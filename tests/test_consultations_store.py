"""Consultation requests, their outbox and handoff requests on real SQLite and PostgreSQL.

The PostgreSQL database is shared by the run: every test uses its own conversations, and reads
only what it wrote (or counts before and after).
"""

import json
import re
import socket
import threading
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.exc import IntegrityError

from clinic_assistant.store import consultations
from clinic_assistant.store.consultations import (
    ConsultationRequest,
    HandoffRequest,
    OutboxEntry,
    RequestNotFound,
    due_deliveries,
    get_request,
    handoffs_for,
    list_requests,
    mark_attempt_failed,
    mark_contacted,
    mark_delivered,
    new_reference,
    record_handoff,
    retry_delivery,
    submit_consultation,
)
from clinic_assistant.store.db import StoreUnavailable, engine_for
from clinic_assistant.store.schema import upgrade
from clinic_assistant.store.tables import consultation_requests, handoff_requests, outbox

REFERENCE = re.compile(r"^CR-[0-9A-HJKMNP-TV-Z]{4}$")
EASTERN = timezone(timedelta(hours=-5))
NOW = datetime(2024, 5, 1, 9, 30, 15, 123456, tzinfo=EASTERN)


@pytest.fixture
def engine(clinic_db_url):
    upgrade(clinic_db_url)
    return engine_for(clinic_db_url)


def a_request(**changes) -> ConsultationRequest:
    request = ConsultationRequest(
        conversation_id=f"visitor-{uuid.uuid4().hex}",
        channel="rest",
        name="María López",
        phone="+18505550100",
        email="maria@example.com",
        help_with="Burning pain in my left hand since a wrist fracture",
        best_times="Weekday mornings",
        consent_to_contact=True,
        consent_at=NOW - timedelta(minutes=2),
    )
    return replace(request, **changes)


def a_handoff(**changes) -> HandoffRequest:
    handoff = HandoffRequest(
        conversation_id=f"visitor-{uuid.uuid4().hex}",
        channel="rest",
        name="Sam Lee",
        contact="+18505550100",
        contact_kind="phone",
        reason="I'd rather talk to a nurse",
        created_at=NOW,
    )
    return replace(handoff, **changes)


def count(engine, table, **where) -> int:
    query = select(func.count()).select_from(table)
    for column, value in where.items():
        query = query.where(table.c[column] == value)
    with engine.connect() as connection:
        return connection.execute(query).scalar_one()


def outbox_row(engine, reference: str):
    with engine.connect() as connection:
        return connection.execute(select(outbox).where(outbox.c.idempotency_key == reference)).one()


def unused_reference(engine) -> str:
    while True:
        reference = new_reference()
        if count(engine, consultation_requests, reference=reference) == 0:
            return reference


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_submit_stores_the_request_and_its_outbox_entry(engine):
    request = a_request()
    reference = submit_consultation(engine, request, NOW)
    assert REFERENCE.match(reference)

    stored = get_request(engine, reference)
    assert stored.request == request
    assert stored.request.consent_at.utcoffset() == timedelta(0)  # the same instant, in UTC
    assert (stored.reference, stored.status, stored.delivery_status) == (reference, "new", "pending")
    assert stored.created_at == NOW and stored.created_at.utcoffset() == timedelta(0)
    assert (stored.delivered_at, stored.contacted_at, stored.attempts, stored.last_error) == (None, None, 0, None)
    assert stored.next_attempt_at == NOW  # due at once

    entry = outbox_row(engine, reference)
    assert entry.status == "pending" and entry.idempotency_key == reference
    assert json.loads(entry.payload) == {
        "reference": reference,
        "conversation_id": request.conversation_id,
        "channel": "rest",
        "name": "María López",
        "phone": "+18505550100",
        "email": "maria@example.com",
        "help_with": request.help_with,
        "best_times": "Weekday mornings",
        "consent_to_contact": True,
        "consent_at": "2024-05-01T14:28:15.123456+00:00",
        "created_at": "2024-05-01T14:30:15.123456+00:00",
    }
    assert entry.payload == json.dumps(json.loads(entry.payload), sort_keys=True)


def test_same_conversation_submitted_twice_returns_the_first_reference(engine):
    request = a_request()
    first = submit_consultation(engine, request, NOW)
    again = submit_consultation(engine, replace(request, help_with="something else"), NOW + timedelta(minutes=1))
    assert again == first
    assert count(engine, consultation_requests, conversation_id=request.conversation_id) == 1
    assert count(engine, outbox, idempotency_key=first) == 1
    assert get_request(engine, first).request.help_with == request.help_with


def test_concurrent_submissions_of_one_conversation_store_one_request(engine):
    request = a_request()
    start = threading.Barrier(6)
    references, errors = [], []

    def submit() -> None:
        start.wait()
        try:
            references.append(submit_consultation(engine, request, NOW))
        except Exception as error:  # reported by the assertion below
            errors.append(error)

    threads = [threading.Thread(target=submit) for _ in range(start.parties)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(references) == start.parties and len(set(references)) == 1
    assert count(engine, consultation_requests, conversation_id=request.conversation_id) == 1


def test_references_are_unique_and_well_formed(engine):
    references = [submit_consultation(engine, a_request(), NOW) for _ in range(30)]
    assert len(set(references)) == len(references)
    assert all(REFERENCE.match(reference) for reference in references)
    drawn = {new_reference() for _ in range(2000)}
    assert all(REFERENCE.match(reference) for reference in drawn)
    assert set("".join(drawn)) - set("CR-") <= set(consultations.REFERENCE_ALPHABET)
    assert not set("ILOU") & set("".join(reference[3:] for reference in drawn))


def test_a_failed_outbox_insert_leaves_nothing(engine, monkeypatch):
    # Another outbox entry already holds the idempotency key the new request will get: the request
    # row is inserted, then the outbox insert violates the unique key and the transaction rolls back.
    taken = unused_reference(engine)
    seeded = submit_consultation(engine, a_request(), NOW)
    with engine.begin() as connection:
        connection.execute(outbox.update().where(outbox.c.idempotency_key == seeded).values(idempotency_key=taken))
    monkeypatch.setattr(consultations, "new_reference", lambda: taken)
    statements = []

    def seen(_connection, _cursor, statement, *_args) -> None:
        statements.append(statement.split("(")[0].strip())

    request = a_request()
    outbox_rows = count(engine, outbox)
    event.listen(engine, "before_cursor_execute", seen)
    try:
        with pytest.raises(IntegrityError):
            submit_consultation(engine, request, NOW)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert "INSERT INTO consultation_requests" in statements and "INSERT INTO outbox" in statements
    assert count(engine, consultation_requests, conversation_id=request.conversation_id) == 0
    assert count(engine, consultation_requests, reference=taken) == 0
    assert count(engine, outbox) == outbox_rows

    # A taken reference is not fatal: the next one drawn is used.
    fresh = unused_reference(engine)
    drawn = iter([taken, fresh])
    monkeypatch.setattr(consultations, "new_reference", lambda: next(drawn))
    assert submit_consultation(engine, request, NOW) == fresh
    assert outbox_row(engine, fresh).idempotency_key == fresh


def test_due_deliveries_are_the_undelivered_ones_due_oldest_first(engine):
    start = datetime(2001, 1, 1, tzinfo=timezone.utc)  # before every other test's entries
    third, first, second = (submit_consultation(engine, a_request(), start + timedelta(minutes=m)) for m in (2, 0, 1))

    assert [e.reference for e in due_deliveries(engine, start - timedelta(seconds=1))] == []
    assert [e.reference for e in due_deliveries(engine, start + timedelta(minutes=1))] == [first, second]
    assert [e.reference for e in due_deliveries(engine, start + timedelta(minutes=5))] == [first, second, third]
    assert [e.reference for e in due_deliveries(engine, start + timedelta(minutes=5), limit=2)] == [first, second]

    [entry] = due_deliveries(engine, start, limit=1)
    assert entry == OutboxEntry(entry.id, first, first, outbox_row(engine, first).payload, 0)
    mark_delivered(engine, entry.id, start + timedelta(minutes=3))
    second_id = outbox_row(engine, second).id
    mark_attempt_failed(engine, second_id, "HTTP 500", start + timedelta(minutes=10))
    assert [e.reference for e in due_deliveries(engine, start + timedelta(minutes=5))] == [third]
    assert [e.reference for e in due_deliveries(engine, start + timedelta(minutes=10))] == [third, second]


def test_mark_attempt_failed_counts_attempts_and_keeps_the_last_error(engine):
    reference = submit_consultation(engine, a_request(), NOW)
    entry_id = outbox_row(engine, reference).id
    mark_attempt_failed(engine, entry_id, "HTTP 500: upstream down", NOW + timedelta(seconds=1))
    mark_attempt_failed(engine, entry_id, "ClientConnectorError", NOW + timedelta(seconds=3))

    stored = get_request(engine, reference)
    assert (stored.delivery_status, stored.attempts, stored.last_error) == ("failed", 2, "ClientConnectorError")
    assert stored.next_attempt_at == NOW + timedelta(seconds=3)
    assert stored.status == "new"
    with pytest.raises(LookupError):
        mark_attempt_failed(engine, 10**9, "HTTP 500", NOW)


def test_mark_delivered_sets_both_statuses(engine):
    reference = submit_consultation(engine, a_request(), NOW)
    entry_id = outbox_row(engine, reference).id
    mark_attempt_failed(engine, entry_id, "HTTP 503", NOW)
    delivered_at = NOW + timedelta(minutes=1)
    mark_delivered(engine, entry_id, delivered_at)

    stored = get_request(engine, reference)
    assert (stored.status, stored.delivery_status, stored.delivered_at) == ("delivered", "delivered", delivered_at)
    assert (stored.attempts, stored.last_error, stored.next_attempt_at) == (2, "HTTP 503", None)
    assert outbox_row(engine, reference).delivered_at is not None
    assert reference not in [e.reference for e in due_deliveries(engine, NOW + timedelta(days=1), limit=10**6)]

    # A late duplicate report changes nothing.
    mark_delivered(engine, entry_id, delivered_at + timedelta(hours=1))
    mark_attempt_failed(engine, entry_id, "HTTP 500", delivered_at + timedelta(hours=1))
    assert get_request(engine, reference) == stored
    with pytest.raises(LookupError):
        mark_delivered(engine, 10**9, NOW)


def test_a_request_contacted_before_its_delivery_stays_contacted(engine):
    reference = submit_consultation(engine, a_request(), NOW)
    mark_contacted(engine, reference, NOW + timedelta(minutes=1))
    mark_delivered(engine, outbox_row(engine, reference).id, NOW + timedelta(minutes=2))
    stored = get_request(engine, reference)
    assert (stored.status, stored.delivery_status) == ("contacted", "delivered")
    assert stored.delivered_at == NOW + timedelta(minutes=2)


def test_list_requests_newest_first_and_by_status(engine):
    older, newer, contacted = (submit_consultation(engine, a_request(), NOW + timedelta(seconds=s)) for s in (1, 2, 3))
    mark_contacted(engine, contacted, NOW + timedelta(minutes=1))
    mine = {older, newer, contacted}

    def listed(status=None) -> list:
        return [stored.reference for stored in list_requests(engine, status) if stored.reference in mine]

    assert listed() == [contacted, newer, older]
    assert listed("new") == [newer, older]
    assert listed("contacted") == [contacted]
    assert listed("delivered") == []
    assert [s for s in list_requests(engine) if s.reference == older] == [get_request(engine, older)]
    with pytest.raises(ValueError):
        list_requests(engine, "bogus")


def test_mark_contacted_keeps_the_first_time(engine):
    reference = submit_consultation(engine, a_request(), NOW)
    mark_contacted(engine, reference, NOW + timedelta(hours=1))
    mark_contacted(engine, reference, NOW + timedelta(hours=2))
    stored = get_request(engine, reference)
    assert (stored.status, stored.contacted_at) == ("contacted", NOW + timedelta(hours=1))


def test_retry_delivery_makes_undelivered_entries_due_now(engine):
    waiting, other, delivered = (submit_consultation(engine, a_request(), NOW) for _ in range(3))
    later = NOW + timedelta(hours=1)
    for reference in (waiting, other):
        mark_attempt_failed(engine, outbox_row(engine, reference).id, "HTTP 500", NOW + timedelta(days=1))
    mark_delivered(engine, outbox_row(engine, delivered).id, NOW)

    assert retry_delivery(engine, waiting, later) == 1
    assert retry_delivery(engine, delivered, later) == 0
    assert [e.reference for e in due_deliveries(engine, later, limit=10**6) if e.reference in {waiting, other}] == [
        waiting
    ]
    undelivered = count(engine, outbox) - count(engine, outbox, status="delivered")
    assert retry_delivery(engine, None, later) == undelivered
    due = {e.reference for e in due_deliveries(engine, later, limit=10**6)}
    assert {waiting, other} <= due and delivered not in due
    assert get_request(engine, waiting).attempts == 1  # the attempts so far are kept


def test_unknown_references_raise_request_not_found(engine):
    unknown = unused_reference(engine)
    for call in (
        lambda: get_request(engine, unknown),
        lambda: mark_contacted(engine, unknown, NOW),
        lambda: retry_delivery(engine, unknown, NOW),
    ):
        with pytest.raises(RequestNotFound) as raised:
            call()
        assert isinstance(raised.value, LookupError)
        assert str(raised.value) == f"No consultation request {unknown}"
        assert raised.value.reference == unknown


@pytest.mark.parametrize(
    "changes",
    [
        {"phone": "850-555-0100"},
        {"phone": "+1555"},
        {"phone": "+18505550100 ext 2"},
        {"name": "x" * 201},
        {"name": ""},
        {"email": "maria lopez@example.com"},
        {"email": "maria@"},
        {"consent_at": None},
        {"consent_at": datetime(2024, 5, 1, 9, 30)},
        {"consent_to_contact": "yes"},
        {"channel": "x" * 33},
        {"conversation_id": ""},
        {"help_with": None},
    ],
    ids=[
        "phone-not-e164",
        "phone-invalid",
        "phone-extra",
        "name-201",
        "name-empty",
        "email-space",
        "email-no-domain",
        "consent-without-time",
        "naive-consent-time",
        "consent-not-bool",
        "long-channel",
        "empty-conversation",
        "no-help-with",
    ],
)
def test_invalid_request_raises_value_error_and_writes_nothing(engine, changes):
    before = count(engine, consultation_requests), count(engine, outbox)
    with pytest.raises(ValueError) as raised:
        submit_consultation(engine, a_request(**changes), NOW)
    assert "maria" not in str(raised.value).lower() and "555" not in str(raised.value)  # no contact data
    assert (count(engine, consultation_requests), count(engine, outbox)) == before


def test_edge_values_that_are_valid(engine):
    for request in (
        a_request(name="x" * 200, email=None),
        a_request(consent_to_contact=False, consent_at=None),
        a_request(phone="+442071838750", help_with="", best_times=""),
    ):
        assert get_request(engine, submit_consultation(engine, request, NOW)).request == request


def test_a_naive_time_is_refused_and_writes_nothing(engine):
    before = count(engine, consultation_requests)
    with pytest.raises(ValueError):
        submit_consultation(engine, a_request(), datetime(2024, 5, 1, 9, 30))
    assert count(engine, consultation_requests) == before
    with pytest.raises(ValueError):
        due_deliveries(engine, datetime(2024, 5, 1, 9, 30))


def test_long_unicode_and_sql_looking_text_is_stored_verbatim(engine):
    help_with = ("Ça brûle, 灼熱痛 — ✋🔥 \"quotes\" 'and' \\backslash\\\n\ttabs; DROP TABLE outbox; -- " * 100)[:5000]
    assert len(help_with) == 5000
    request = a_request(
        name="Robert'); DROP TABLE consultation_requests;-- 🙂",
        help_with=help_with,
        best_times="après 17h 🌙 OR 1=1",
    )
    reference = submit_consultation(engine, request, NOW)
    assert get_request(engine, reference).request == request
    payload = json.loads(outbox_row(engine, reference).payload)
    assert (payload["help_with"], payload["name"], payload["best_times"]) == (
        help_with,
        request.name,
        request.best_times,
    )


def test_handoffs_round_trip_oldest_first(engine):
    later = a_handoff()
    earlier = replace(later, name=None, contact="sam@example.org", contact_kind="email", created_at=NOW - timedelta(1))
    assert isinstance(record_handoff(engine, later), int)
    record_handoff(engine, earlier)
    record_handoff(engine, a_handoff())  # another conversation
    assert handoffs_for(engine, later.conversation_id) == [earlier, later]
    assert handoffs_for(engine, later.conversation_id)[0].created_at.utcoffset() == timedelta(0)
    assert handoffs_for(engine, "nobody") == []


@pytest.mark.parametrize(
    "changes",
    [
        {"contact": "850 555 0100"},
        {"contact": "sam@example.org"},
        {"contact_kind": "email", "contact": "sam lee@example.org"},
        {"contact_kind": "fax"},
        {"name": "x" * 201},
        {"created_at": datetime(2024, 5, 1, 9, 30)},
    ],
    ids=["phone-not-e164", "email-as-phone", "email-space", "kind", "name-201", "naive-time"],
)
def test_invalid_handoff_raises_value_error_and_writes_nothing(engine, changes):
    before = count(engine, handoff_requests)
    with pytest.raises(ValueError):
        record_handoff(engine, a_handoff(**changes))
    assert count(engine, handoff_requests) == before


def test_database_itself_refuses_consent_without_its_time(engine):
    row = {
        "reference": unused_reference(engine),
        "conversation_id": f"visitor-{uuid.uuid4().hex}",
        "channel": "rest",
        "name": "A",
        "phone": "+18505550100",
        "help_with": "",
        "best_times": "",
        "consent_to_contact": True,
        "created_at": NOW,
    }
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(consultation_requests.insert().values(row))


def test_unreachable_database_raises_store_unavailable_fast():
    engine = engine_for(f"postgresql://postgres@127.0.0.1:{closed_port()}/clinic")
    calls = [
        lambda: submit_consultation(engine, a_request(), NOW),
        lambda: due_deliveries(engine, NOW),
        lambda: mark_delivered(engine, 1, NOW),
        lambda: mark_attempt_failed(engine, 1, "HTTP 500", NOW),
        lambda: list_requests(engine),
        lambda: get_request(engine, "CR-0000"),
        lambda: mark_contacted(engine, "CR-0000", NOW),
        lambda: retry_delivery(engine, None, NOW),
        lambda: record_handoff(engine, a_handoff()),
        lambda: handoffs_for(engine, "visitor-1"),
    ]
    started = time.monotonic()
    for call in calls:
        with pytest.raises(StoreUnavailable):
            call()
    assert time.monotonic() - started < 5
