"""Retention: old conversations deleted from the tracker store and the clinic database, on SQLite and PostgreSQL.

Retention deletes by age across a whole database: on PostgreSQL each test gets a clinic database of its own
instead of the run's shared one, so that it neither deletes other tests' rows nor counts them.
"""

import subprocess
import sys
from contextlib import ExitStack
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from clinic_assistant.console.retention import remove_older_than
from clinic_assistant.processes import process_environment
from clinic_assistant.settings import PROJECT_DIR
from clinic_assistant.store import review
from clinic_assistant.store.consultations import get_request, record_handoff, submit_consultation
from clinic_assistant.store.db import engine_for, record_flag
from clinic_assistant.store.schema import upgrade
from clinic_assistant.store.tables import (
    audit_log,
    conversation_flags,
    conversation_intents,
    conversation_messages,
    conversation_notes,
    conversation_tags,
    conversations,
    corrections,
    sms_choices,
)
from tests import test_console_store as shared
from tests.conftest import temporary_postgres_database
from tests.test_console_store import a_consultation, a_flag, a_handoff, request_id

tracker, console = shared.tracker, shared.console


@pytest.fixture
def clinic(clinic_db_url):
    with ExitStack() as stack:
        url = clinic_db_url
        if url.startswith("postgresql"):
            url = stack.enter_context(temporary_postgres_database())
        upgrade(url)
        yield engine_for(url)

OLD = datetime(2001, 1, 10, 9, 0, tzinfo=timezone.utc)
NOW = datetime(2001, 3, 1, 12, 0, tzinfo=timezone.utc)
DAYS = 30  # the cutoff: 2001-01-30 12:00
CLINIC_TABLES = (
    conversations,
    conversation_messages,
    conversation_intents,
    conversation_tags,
    conversation_notes,
    corrections,
    conversation_flags,
    sms_choices,
)


def clinic_rows(engine, conversation_id) -> dict:
    with engine.connect() as connection:
        return {
            table.name: connection.execute(
                select(func.count()).select_from(table).where(table.c.conversation_id == conversation_id)
            ).scalar_one()
            for table in CLINIC_TABLES
        }


def audit_count(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(audit_log)).scalar_one()


def with_everything(console, at) -> str:
    """A conversation with a row in every clinic table that retention clears."""
    c = console
    sender = c.talk(at, "It burns", "call me at +18505550142")
    record_flag(c.clinic, a_flag(sender, "crisis", at))
    c.index()
    review.tag(c.clinic, sender, "follow up", "alice", now=at)
    review.add_note(c.clinic, sender, "Called back", "alice", now=at)
    review.add_correction(c.clinic, sender, 5, "It burns", "symptoms", "symptoms/pain", "alice", at)
    with c.clinic.begin() as connection:
        connection.execute(sms_choices.insert().values(conversation_id=sender, payloads="[]", offered_at=at))
    return sender


def test_old_conversations_are_removed_except_those_with_open_requests(console):
    c = console
    old = with_everything(c, OLD)
    open_request = with_everything(c, OLD)
    record_handoff(c.clinic, a_handoff(open_request, OLD))
    closed_request = with_everything(c, OLD)
    reference = submit_consultation(c.clinic, a_consultation(closed_request), OLD)
    closed_id = request_id(c.clinic, "consultation", closed_request)
    review.set_request_status(c.clinic, "consultation", closed_id, "closed", "alice", now=OLD)
    recent = with_everything(c, NOW - timedelta(days=DAYS - 1))
    # Quiet in the index, but the patient came back since (not indexed yet): not old.
    came_back = with_everything(c, OLD)
    c.tracker.exchange(came_back, "me again", NOW - timedelta(days=1), channel=c.channel)
    review.audit(c.clinic, "alice", "view_transcript", old, now=OLD)
    audited = audit_count(c.clinic)
    events = {sender: c.tracker.count(sender) for sender in (old, open_request, closed_request, recent, came_back)}
    kept_rows = {sender: clinic_rows(c.clinic, sender) for sender in (open_request, recent, came_back)}
    removed_rows = sum(sum(clinic_rows(c.clinic, sender).values()) for sender in (old, closed_request))
    assert 0 not in clinic_rows(c.clinic, old).values()  # every table has rows to remove

    report = remove_older_than(c.tracker.engine, c.clinic, DAYS, NOW)

    assert (report.conversations, report.kept) == (2, 1)
    assert report.events == events[old] + events[closed_request]
    assert report.clinic_rows == removed_rows
    assert report.cutoff == NOW - timedelta(days=DAYS)
    for removed in (old, closed_request):
        assert c.tracker.count(removed) == 0
        assert set(clinic_rows(c.clinic, removed).values()) == {0}
    for kept in (open_request, recent, came_back):
        assert c.tracker.count(kept) == events[kept]
        assert clinic_rows(c.clinic, kept) == kept_rows[kept]
    assert get_request(c.clinic, reference).request.conversation_id == closed_request  # requests stay
    assert audit_count(c.clinic) == audited  # the audit log is never touched
    assert remove_older_than(c.tracker.engine, c.clinic, DAYS, NOW).conversations == 0


def test_a_closed_request_releases_its_conversation(console):
    c = console
    sender = with_everything(c, OLD)
    record_handoff(c.clinic, a_handoff(sender, OLD))
    assert remove_older_than(c.tracker.engine, c.clinic, DAYS, NOW).kept == 1
    review.set_request_status(c.clinic, "handoff", request_id(c.clinic, "handoff", sender), "closed", "bob", now=OLD)
    report = remove_older_than(c.tracker.engine, c.clinic, DAYS, NOW)
    assert (report.conversations, report.kept) == (1, 0)
    assert c.tracker.count(sender) == 0


def test_new_conversations_are_indexed_after_everything_was_removed(console):
    """SQLite reuses the ids of deleted newest events: the indexer must not take them for read already."""
    c = console
    c.talk(OLD, "one", "two")
    c.index()
    assert remove_older_than(c.tracker.engine, c.clinic, DAYS, NOW).conversations == 1
    assert c.tracker.count() == 0
    sender = c.talk(NOW, "a new patient", "with questions")
    c.index()
    assert c.row(sender).user_turns == 2


def test_retention_needs_a_day_at_least(console):
    with pytest.raises(ValueError):
        remove_older_than(console.tracker.engine, console.clinic, 0, NOW)


def retention_cli(console, *args: str, days_setting: str = "") -> subprocess.CompletedProcess:
    env = process_environment(
        {"TRACKER_URL": console.tracker.url, "CLINIC_DATABASE_URL": str(console.clinic.url.render_as_string(False))}
    )
    env.pop("RETENTION_DAYS", None)
    if days_setting:
        env["RETENTION_DAYS"] = days_setting
    return subprocess.run(
        [sys.executable, "-m", "clinic_assistant", "retention", *args],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_retention_command_prints_and_audits_its_report(console):
    c = console
    old = with_everything(c, OLD)
    recent = c.talk(datetime.now(timezone.utc), "hello")
    c.index()

    unset = retention_cli(c)
    assert unset.returncode == 0, unset.stderr
    assert "keeping every conversation" in unset.stdout
    assert c.tracker.count(old) > 0

    done = retention_cli(c, days_setting="30")
    assert done.returncode == 0, done.stderr
    assert "Removed 1 conversations" in done.stdout
    assert c.tracker.count(old) == 0 and c.tracker.count(recent) > 0
    [entry] = [e for e in review.audit_entries(c.clinic, 20) if e.action == "retention" and e.detail in done.stdout]
    assert (entry.actor, entry.target) == ("system", "")

    again = retention_cli(c, "--days", "3650")
    assert again.returncode == 0 and "Removed 0 conversations" in again.stdout
    assert retention_cli(c, "--days", "0").returncode != 0
