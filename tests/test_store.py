"""The clinic's own database on real SQLite and PostgreSQL: migrations, queries, outages."""

import socket
import time
import uuid
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, inspect, select, text
from sqlalchemy.exc import IntegrityError

from clinic_assistant.store.db import Flag, StoreUnavailable, engine_for, flags_for, record_flag
from clinic_assistant.store.schema import alembic_config, upgrade
from clinic_assistant.store.tables import conversation_flags, metadata

EASTERN = timezone(timedelta(hours=-5))


@pytest.fixture
def engine(clinic_db_url):
    upgrade(clinic_db_url)
    return engine_for(clinic_db_url)


def a_flag(**changes) -> Flag:
    flag = Flag(
        conversation_id=f"visitor-{uuid.uuid4().hex}",  # the PostgreSQL database is shared by the run
        channel="rest",
        kind="crisis",
        detected_by="pattern",
        message="I don't want to live like this anymore",
        flagged_at=datetime(2024, 5, 1, 9, 30, 15, 123456, tzinfo=EASTERN),
    )
    return replace(flag, **changes)


def count_rows(engine) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(conversation_flags)).scalar_one()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_upgrade_twice_is_idempotent(clinic_db_url):
    upgrade(clinic_db_url)
    upgrade(clinic_db_url)
    engine = engine_for(clinic_db_url)
    assert {"conversation_flags", "reach_out_requests"} <= set(inspect(engine).get_table_names())
    head = ScriptDirectory.from_config(alembic_config(clinic_db_url)).get_current_head()
    with engine.connect() as connection:
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [head]


def test_migrated_schema_matches_tables(engine):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []


def test_constraint_names_are_the_conventional_ones(engine):
    inspector = inspect(engine)
    assert inspector.get_pk_constraint("conversation_flags")["name"] == "pk_conversation_flags"
    assert {c["name"] for c in inspector.get_check_constraints("conversation_flags")} == {
        "ck_conversation_flags_kind",
        "ck_conversation_flags_detected_by",
    }
    assert [i["name"] for i in inspector.get_indexes("conversation_flags")] == ["ix_conversation_flags_conversation_id"]


def test_record_then_read_round_trips_every_field(engine):
    flag = a_flag(channel="twilio", kind="emergency", detected_by="model")
    flag_id = record_flag(engine, flag)
    assert isinstance(flag_id, int)
    [stored] = flags_for(engine, flag.conversation_id)
    assert stored == flag
    assert stored.flagged_at.utcoffset() == timedelta(0)  # aware, the same instant, in UTC
    assert stored.flagged_at == datetime(2024, 5, 1, 14, 30, 15, 123456, tzinfo=timezone.utc)


def test_flags_come_back_oldest_first_and_only_for_their_conversation(engine):
    later = a_flag()
    earlier = replace(later, kind="emergency", flagged_at=later.flagged_at - timedelta(minutes=5))
    record_flag(engine, later)
    record_flag(engine, earlier)
    record_flag(engine, a_flag())  # another conversation
    assert flags_for(engine, later.conversation_id) == [earlier, later]
    assert flags_for(engine, "nobody") == []


@pytest.mark.parametrize(
    "changes",
    [
        {"kind": "bogus"},
        {"detected_by": "guess"},
        {"channel": ""},
        {"channel": "x" * 33},
        {"flagged_at": datetime(2024, 5, 1, 9, 30)},
    ],
    ids=["kind", "detected_by", "empty-channel", "long-channel", "naive-time"],
)
def test_invalid_flag_raises_value_error_and_writes_nothing(engine, changes):
    before = count_rows(engine)
    with pytest.raises(ValueError):
        record_flag(engine, a_flag(**changes))
    assert count_rows(engine) == before


def test_long_unicode_message_is_stored_verbatim(engine):
    message = ("Ça brûle, 灼熱痛 — ✋🔥 \"quotes\" 'and' \\backslash\\\n\ttabs; DROP TABLE x; " * 100)[:5000]
    assert len(message) == 5000
    flag = a_flag(message=message)
    record_flag(engine, flag)
    assert flags_for(engine, flag.conversation_id)[0].message == message


def test_unreachable_database_raises_store_unavailable_fast():
    url = f"postgresql://postgres@127.0.0.1:{closed_port()}/clinic"
    engine = engine_for(url)
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        record_flag(engine, a_flag())
    with pytest.raises(StoreUnavailable):
        flags_for(engine, "visitor-1")
    with pytest.raises(StoreUnavailable):
        upgrade(url)
    assert time.monotonic() - started < 5


def test_unmigrated_database_is_unavailable(tmp_path):
    with pytest.raises(StoreUnavailable):
        flags_for(engine_for(f"sqlite:///{tmp_path / 'empty.db'}"), "visitor-1")


def test_engines_are_cached_and_sqlite_uses_wal(tmp_path):
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    assert engine_for(url) is engine_for(url)
    with engine_for(url).connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_database_itself_refuses_an_unknown_kind(engine):
    row = {**a_flag().__dict__, "kind": "bogus"}
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(conversation_flags.insert().values(row))
