"""Records for staff survive a database outage: spooled, logged, stored when it is back."""

import logging
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from clinic_assistant.background_recorder import BackgroundRecorder
from clinic_assistant.processes import free_port
from clinic_assistant.store.db import Flag, ReachOut, engine_for, flags_for, reach_outs_for
from tests.tcp_proxy import TcpProxy


def a_flag(conversation: str, message: str = "i want to die") -> Flag:
    return Flag(conversation, "rest", "crisis", "pattern", message, datetime.now(timezone.utc))


def a_reach_out(conversation: str) -> ReachOut:
    return ReachOut(conversation, "rest", "+18505550100", "phone", "850 555 0100 pls", datetime.now(timezone.utc))


async def test_records_are_stored_on_each_backend(clinic_db_url: str, tmp_path: Path):
    recorder = BackgroundRecorder(clinic_db_url, tmp_path / "spool.jsonl")
    conversation = f"rec-{tmp_path.name}"
    assert await recorder.record(a_flag(conversation))
    assert await recorder.record(a_reach_out(conversation))
    engine = engine_for(clinic_db_url)
    assert [f.message for f in flags_for(engine, conversation)] == ["i want to die"]
    assert [r.contact for r in reach_outs_for(engine, conversation)] == ["+18505550100"]
    assert not (tmp_path / "spool.jsonl").exists()


async def test_an_outage_spools_and_logs_then_the_next_write_stores_everything(
    postgres_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    target = make_url(postgres_url)
    proxy = TcpProxy((target.host, target.port or 5432), free_port())
    url = target.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    recorder = BackgroundRecorder(url, tmp_path / "spool.jsonl", retry_delays=(0.1,))
    conversation = f"outage-{tmp_path.name}"
    with caplog.at_level(logging.ERROR):
        assert not await recorder.record(a_flag(conversation, "first"))
        assert not await recorder.record(a_reach_out(conversation))
    assert f"crisis flag of conversation {conversation}" in caplog.text
    assert len((tmp_path / "spool.jsonl").read_text().splitlines()) == 2
    proxy.restore()
    try:
        assert await recorder.record(a_flag(conversation, "second"))
    finally:
        proxy.cut()
    engine = engine_for(postgres_url)
    assert [f.message for f in flags_for(engine, conversation)] == ["first", "second"]
    assert len(reach_outs_for(engine, conversation)) == 1
    assert not (tmp_path / "spool.jsonl").exists()
