"""Keeps the console's conversation index (``conversations``, ``conversation_messages``, ``conversation_intents``)
up to date with Rasa's tracker store and the clinic's flags and requests.

Each source is read past its watermark (``index_watermarks``), in id order. Ids may be committed out of order
(PostgreSQL sequences): the watermark stops before a gap until the gap is GAP_WAIT_SECONDS old, and rows past it
are indexed meanwhile anyway, which is harmless because indexing is idempotent. Writers of the index take one lock
(``review.lock_index``), so two console processes can run the indexer at once.
"""

import hashlib
import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple

from sqlalchemy import Table, func, select
from sqlalchemy.engine import Connection, Engine, Row, make_url
from sqlalchemy.exc import DBAPIError

from clinic_assistant.store.db import StoreUnavailable, begin, utc
from clinic_assistant.store.review import (
    TRACKER_EVENTS,
    chunks,
    insert_for,
    lock_index,
    refresh_conversations,
    storable,
    turn_of,
)
from clinic_assistant.store.tables import (
    consultation_requests,
    conversation_flags,
    conversation_messages,
    handoff_requests,
    index_watermarks,
    reach_out_requests,
    request_status_events,
)

# A missing id older than this (by its successor's time) was rolled back or deleted: read past it.
GAP_WAIT_SECONDS = 30.0
MESSAGE_EVENTS = ("user", "bot")


@dataclass(frozen=True)
class ClinicSource:
    """A clinic table whose new rows change conversations' flags or open requests."""

    table: Table
    time_column: str
    conversations_of: Callable[[Connection, List[Row]], Set[str]]


def index_new_events(tracker: Engine, clinic: Engine, batch: int = 5000, now: Optional[float] = None) -> int:
    """Index up to ``batch`` new tracker events and clinic changes; how many were indexed (call until 0).

    ``now`` (seconds since the epoch) decides which id gaps are old enough to skip. StoreUnavailable when
    either database can't be used.
    """
    now = time.time() if now is None else now
    with begin(clinic) as connection:
        lock_index(connection)
        indexed = _index_tracker(connection, tracker, batch, now)
        for name, source in CLINIC_SOURCES.items():
            indexed += _index_clinic_source(connection, name, source, batch, now)
    return indexed


def tracker_source(url: Any) -> str:
    """The watermark name of the tracker store at ``url``: another tracker store is read from its start."""
    parsed = make_url(url)
    where = f"{parsed.get_backend_name()}://{parsed.host or ''}:{parsed.port or ''}/{parsed.database or ''}"
    return "tracker:" + hashlib.sha256(where.encode()).hexdigest()[:24]


def _index_tracker(connection: Connection, tracker: Engine, batch: int, now: float) -> int:
    name = tracker_source(tracker.url)
    last = watermark(connection, name)
    rows = _tracker_rows(tracker, last, batch)
    if not rows:
        follow_shrunk_tracker(connection, tracker)
        return 0
    mark = safe_watermark(last, [(row.id, row.timestamp or 0.0) for row in rows], now)
    messages = [_message(row) for row in rows if row.type_name in MESSAGE_EVENTS]
    written = _write_messages(connection, [m for m in messages if m is not None])
    set_watermark(connection, name, mark)
    return sum(row.id <= mark for row in rows) + written


def _tracker_rows(tracker: Engine, last: int, batch: int) -> List[Row]:
    events = TRACKER_EVENTS.c
    query = (
        select(events.id, events.sender_id, events.type_name, events.timestamp, events.data)
        .where(events.id > last)
        .order_by(events.id)
        .limit(batch)
    )
    try:
        with begin(tracker) as connection:
            return connection.execute(query).all()
    except (DBAPIError, StoreUnavailable) as error:
        if no_events_table(error):
            return []  # Rasa has not created its table yet: nothing to index
        raise


def no_events_table(error: Exception) -> bool:
    """Whether ``error`` (from ``begin`` on the tracker store) says its ``events`` table does not exist."""
    cause = error if isinstance(error, DBAPIError) else error.__cause__
    if not isinstance(cause, DBAPIError):
        return False
    return getattr(cause.orig, "pgcode", None) == "42P01" or "no such table" in str(cause.orig)


def follow_shrunk_tracker(connection: Connection, tracker: Engine) -> None:
    """Lower the tracker's watermark if its newest events were deleted (SQLite then reuses their ids) or the
    tracker store was recreated; the console notices by itself when it runs, retention calls this too.

    A tracker store recreated and grown past the old watermark while no console ran can't be told apart:
    then delete its row of ``index_watermarks`` to index it from the start.
    """
    name = tracker_source(tracker.url)
    last = watermark(connection, name)
    if last == 0:
        return
    with begin(tracker) as tracker_connection:
        top = tracker_connection.execute(select(func.max(TRACKER_EVENTS.c.id))).scalar() or 0
    if top < last:
        set_watermark(connection, name, top, only_up=False)


def _message(row: Row) -> Optional[Dict[str, Any]]:
    try:
        data = json.loads(row.data or "{}")
    except ValueError:
        return None
    if not isinstance(data, dict) or not data.get("text"):
        return None  # buttons-only or empty events carry nothing to read or search
    turn = turn_of(row.id, row.type_name, row.timestamp, data)
    return {
        "id": row.id,
        "conversation_id": row.sender_id,
        "at": turn.at,
        "speaker": turn.speaker,
        "text": storable(turn.text),
        "intent": _cut(turn.intent, 255),
        "confidence": turn.confidence if isinstance(turn.confidence, (int, float)) else None,
        "response": _cut(turn.response, 255),
        "channel": _cut(turn.channel, 32),
    }


def _cut(value: Any, length: int) -> Optional[str]:
    return str(value)[:length] if value else None


def _write_messages(connection: Connection, messages: List[Dict[str, Any]]) -> int:
    """Store new messages (a message id already stored for another conversation is replaced: the tracker store
    was recreated) and refresh their conversations; how many were new or changed."""
    table = conversation_messages.c
    stored: Dict[int, str] = {}
    for chunk in chunks([m["id"] for m in messages]):
        query = select(table.id, table.conversation_id).where(table.id.in_(chunk))
        stored.update({row.id: row.conversation_id for row in connection.execute(query)})
    changed = [m for m in messages if stored.get(m["id"]) != m["conversation_id"]]
    replaced = [m["id"] for m in changed if m["id"] in stored]
    for chunk in chunks(replaced):
        connection.execute(conversation_messages.delete().where(table.id.in_(chunk)))
    if changed:
        connection.execute(insert_for(connection, conversation_messages).on_conflict_do_nothing(), changed)
    touched = {m["conversation_id"] for m in changed} | {stored[message_id] for message_id in replaced}
    refresh_conversations(connection, touched)
    return len(changed)


def _index_clinic_source(connection: Connection, name: str, source: ClinicSource, batch: int, now: float) -> int:
    last = watermark(connection, name)
    table = source.table
    rows = connection.execute(
        select(table).where(table.c.id > last).order_by(table.c.id).limit(batch)
    ).all()
    if not rows:
        return 0
    mark = safe_watermark(last, [(row.id, utc_seconds(row._mapping[source.time_column])) for row in rows], now)
    refresh_conversations(connection, source.conversations_of(connection, rows))
    set_watermark(connection, name, mark)
    return sum(row.id <= mark for row in rows)


def _own_conversations(_: Connection, rows: List[Row]) -> Set[str]:
    return {row.conversation_id for row in rows}


def _requests_conversations(connection: Connection, rows: List[Row]) -> Set[str]:
    tables = {"consultation": consultation_requests, "handoff": handoff_requests, "reach_out": reach_out_requests}
    found: Set[str] = set()
    for kind, table in tables.items():
        ids = sorted({row.request_id for row in rows if row.request_kind == kind})
        for chunk in chunks(ids):
            query = select(table.c.conversation_id).where(table.c.id.in_(chunk))
            found.update(connection.execute(query).scalars())
    return found


CLINIC_SOURCES = {
    "conversation_flags": ClinicSource(conversation_flags, "flagged_at", _own_conversations),
    "consultation_requests": ClinicSource(consultation_requests, "created_at", _own_conversations),
    "handoff_requests": ClinicSource(handoff_requests, "created_at", _own_conversations),
    "reach_out_requests": ClinicSource(reach_out_requests, "requested_at", _own_conversations),
    "request_status_events": ClinicSource(request_status_events, "at", _requests_conversations),
}


def safe_watermark(last: int, rows: Sequence[Tuple[int, float]], now: float) -> int:
    """How far ``rows`` ((id, unix time), ascending ids, all > ``last``) let the watermark move: up to the first
    gap in the ids that is younger than GAP_WAIT_SECONDS (the missing row may still be committed)."""
    mark = last
    for row_id, moment in rows:
        if row_id != mark + 1 and now - moment < GAP_WAIT_SECONDS:
            break
        mark = row_id
    return mark


def utc_seconds(moment: datetime) -> float:
    """A stored time as seconds since the epoch."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return utc(moment).timestamp()


def watermark(connection: Connection, name: str) -> int:
    """How far source ``name`` was indexed: the last id read (0 at first)."""
    query = select(index_watermarks.c.last_id).where(index_watermarks.c.name == name)
    return connection.execute(query).scalar_one_or_none() or 0


def set_watermark(connection: Connection, name: str, last_id: int, only_up: bool = True) -> None:
    """Record that source ``name`` was read up to ``last_id`` (never backwards unless ``only_up`` is false)."""
    insert = insert_for(connection, index_watermarks).values(name=name, last_id=last_id)
    value = func.max(index_watermarks.c.last_id, last_id) if only_up else insert.excluded.last_id
    if connection.dialect.name == "postgresql" and only_up:
        value = func.greatest(index_watermarks.c.last_id, last_id)
    connection.execute(insert.on_conflict_do_update(index_elements=["name"], set_={"last_id": value}))


def run_until_done(tracker: Engine, clinic: Engine, batch: int = 5000) -> int:
    """Index everything there is now (the console's loop calls this every CONSOLE_INDEX_SECONDS); how much."""
    total = 0
    while True:
        indexed = index_new_events(tracker, clinic, batch)
        total += indexed
        if not indexed:
            return total

