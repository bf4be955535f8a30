"""Deleting old conversations: their tracker events and everything the clinic database holds about them.

    python -m clinic_assistant retention [--days N]    # default RETENTION_DAYS; unset keeps everything

A conversation is old when its newest tracker event (or, once the tracker has none, its newest indexed message)
is older than the cutoff. Conversations with a consultation, handoff or reach-out request that is not closed
are kept, whatever their age. The requests themselves and the audit log are never deleted here.
"""

import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable, Iterable, List, Optional, Set

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import DBAPIError

from clinic_assistant import settings
from clinic_assistant.console.indexer import follow_shrunk_tracker, no_events_table
from clinic_assistant.store.db import StoreUnavailable, begin, engine_for, utc
from clinic_assistant.store.review import TRACKER_EVENTS, audit, chunks, lock_index, newest_statuses
from clinic_assistant.store.tables import (
    consultation_requests,
    conversation_flags,
    conversation_intents,
    conversation_messages,
    conversation_notes,
    conversation_tags,
    conversations,
    corrections,
    handoff_requests,
    reach_out_requests,
    sms_choices,
    sms_inbound,
)

# Every clinic table keyed by conversation whose rows go with the conversation.
CONVERSATION_TABLES = (
    conversations,
    conversation_messages,
    conversation_intents,
    conversation_tags,
    conversation_notes,
    corrections,
    conversation_flags,
    sms_choices,
    sms_inbound,
)
REQUEST_TABLES = {"consultation": consultation_requests, "handoff": handoff_requests, "reach_out": reach_out_requests}


@dataclass(frozen=True)
class RetentionReport:
    cutoff: datetime  # conversations quiet since before this were removed
    conversations: int  # conversations removed
    events: int  # tracker events deleted
    clinic_rows: int  # clinic database rows deleted (index, messages, intents, tags, notes, corrections, flags)
    kept: int  # old conversations kept because a request of theirs is not closed

    def summary(self) -> str:
        return (
            f"Removed {self.conversations} conversations older than {self.cutoff:%Y-%m-%d %H:%M} UTC "
            f"({self.events} tracker events, {self.clinic_rows} clinic rows); "
            f"kept {self.kept} with a request not closed."
        )


def remove_older_than(tracker: Engine, clinic: Engine, days: int, now: datetime) -> RetentionReport:
    """Delete the conversations whose last activity is more than ``days`` days before ``now``."""
    if days < 1:
        raise ValueError("retention needs at least 1 day")
    cutoff = utc(now) - timedelta(days=days)
    candidates = _quiet_in_tracker(tracker, cutoff) | _quiet_in_index(clinic, cutoff)
    candidates -= _active_in_tracker(tracker, sorted(candidates), cutoff)
    with begin(clinic) as connection:
        lock_index(connection)
        kept = _with_open_requests(connection, sorted(candidates))
        removed = sorted(candidates - kept)
        clinic_rows = _delete_clinic_rows(connection, removed)
    # After the clinic's transaction: should this fail, the next run finds these events again.
    events = _delete_events(tracker, removed)
    if events:
        with begin(clinic) as connection:
            lock_index(connection)
            follow_shrunk_tracker(connection, tracker)  # SQLite reuses the ids of deleted newest events
    return RetentionReport(cutoff, len(removed), events, clinic_rows, len(kept))


def _quiet_in_tracker(tracker: Engine, cutoff: datetime) -> Set[str]:
    events = TRACKER_EVENTS.c
    query = select(events.sender_id).group_by(events.sender_id).having(func.max(events.timestamp) < cutoff.timestamp())
    return set(_tracker_query(tracker, lambda connection: connection.execute(query).scalars().all()))


def _active_in_tracker(tracker: Engine, ids: List[str], cutoff: datetime) -> Set[str]:
    # Quiet in the index but written to since (the indexer lags behind): not old.
    events = TRACKER_EVENTS.c
    active: Set[str] = set()
    for chunk in chunks(ids):
        query = select(events.sender_id).where(events.sender_id.in_(chunk), events.timestamp >= cutoff.timestamp())
        active.update(_tracker_query(tracker, lambda connection, q=query: connection.execute(q.distinct()).scalars()))
    return active


def _tracker_query(tracker: Engine, run: Callable[[Connection], Iterable[Any]]) -> List[Any]:
    try:
        with begin(tracker) as connection:
            return list(run(connection))
    except (DBAPIError, StoreUnavailable) as error:
        if no_events_table(error):
            return []  # no tracker table yet: no events
        raise


def _quiet_in_index(clinic: Engine, cutoff: datetime) -> Set[str]:
    query = select(conversations.c.conversation_id).where(conversations.c.last_at < cutoff)
    with begin(clinic) as connection:
        return set(connection.execute(query).scalars())


def _with_open_requests(connection: Connection, ids: List[str]) -> Set[str]:
    keep: Set[str] = set()
    for kind, table in REQUEST_TABLES.items():
        for chunk in chunks(ids):
            found = connection.execute(
                select(table.c.id, table.c.conversation_id).where(table.c.conversation_id.in_(chunk))
            ).all()
            statuses = newest_statuses(connection, kind, [row.id for row in found])
            keep.update(row.conversation_id for row in found if statuses.get(row.id, ("new",))[0] != "closed")
    return keep


def _delete_clinic_rows(connection: Connection, ids: List[str]) -> int:
    deleted = 0
    for table in CONVERSATION_TABLES:
        for chunk in chunks(ids):
            deleted += connection.execute(table.delete().where(table.c.conversation_id.in_(chunk))).rowcount
    return deleted


def _delete_events(tracker: Engine, ids: List[str]) -> int:
    def delete(connection: Connection) -> List[int]:
        senders = TRACKER_EVENTS.c.sender_id
        return [connection.execute(TRACKER_EVENTS.delete().where(senders.in_(chunk))).rowcount for chunk in chunks(ids)]

    return sum(_tracker_query(tracker, delete))


def command(days: Optional[int]) -> None:
    """``python -m clinic_assistant retention``: remove, print the report, record it in the audit log."""
    days = settings.RETENTION_DAYS if days is None else days
    if days is None:
        print("RETENTION_DAYS is not set and no --days given: keeping every conversation.")
        return
    tracker, clinic = engine_for(settings.TRACKER_URL), engine_for(settings.CLINIC_DATABASE_URL)
    try:
        report = remove_older_than(tracker, clinic, days, datetime.now(timezone.utc))
        audit(clinic, "system", "retention", "", report.summary())
    except StoreUnavailable as error:
        sys.exit(f"Database unavailable: {error}")
    except ValueError as error:
        sys.exit(str(error))
    print(report.summary())
