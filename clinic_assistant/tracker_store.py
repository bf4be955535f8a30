"""Rasa's SQL tracker store, with the history a turn replays bounded.

Rasa 3.6 rebuilds a conversation's tracker from every event of its current session on each turn, and the
rule policy walks that whole history again: a turn costs more the longer the conversation has gone on.
After ``SESSION_TURN_LIMIT`` visitor messages, once a turn has ended, this store appends a continuation to
the session: ``session_started`` (marked as a continuation), every slot that differs from its initial
value, the open form if there is one, and ``action_listen``. Rasa then loads only the continuation, and the
conversation goes on as before: this assistant's rules look only at slots, the open form and the current
message. Nothing is deleted, so transcripts keep every message.

A continuation has no visitor message yet, which is what Rasa's session expiry looks at; so the time of
the last visitor message is carried in the marker, and a continuation older than the session expiry is
ended on loading, so the next message starts a fresh session as it would have without the continuation.

Rasa's ``session_scope`` turns any ``ValueError`` raised while a session is open (a text SQLAlchemy cannot
encode, for one) into a message about a missing PostgreSQL schema and exits the whole server. Here the schema
is checked once, when the store is created, and an error during a query is the caller's to handle.
"""

import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator, List, Optional

from rasa.core.tracker_store import SQLTrackerStore, ensure_schema_exists
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    ConversationPaused,
    Event,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.utils.cli import print_error_and_exit

from clinic_assistant import settings

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

# The marker's metadata: when the visitor last wrote before the continuation (seconds since the epoch).
LAST_MESSAGE_AT = "continues_after_message_at"


class BoundedSQLTrackerStore(SQLTrackerStore):
    def __init__(self, *args: Any, turn_limit: Optional[int] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.turn_limit = settings.SESSION_TURN_LIMIT if turn_limit is None else int(turn_limit)
        session = self.sessionmaker()
        try:
            ensure_schema_exists(session)
        except ValueError as missing:  # reported once, at start-up, as Rasa would
            print_error_and_exit(f"PostgreSQL schema '{missing}' (POSTGRESQL_SCHEMA) does not exist: create it.")
        finally:
            session.close()

    @contextmanager
    def session_scope(self) -> Iterator["Session"]:
        """A session that is always closed; errors propagate to the turn that caused them."""
        session = self.sessionmaker()
        try:
            yield session
        finally:
            session.close()

    async def save(self, tracker: DialogueStateTracker) -> None:
        if self.turn_limit > 0 and _turn_ended(tracker) and _messages_in_session(tracker) >= self.turn_limit:
            for event in continuation(tracker):
                tracker.update(event)
        await super().save(tracker)

    async def retrieve(self, sender_id: str) -> Optional[DialogueStateTracker]:
        tracker = await super().retrieve(sender_id)
        if tracker is not None and self._continuation_expired(tracker):
            # Stored with the next turn; Rasa then sees an empty session and starts a new one.
            tracker.update(SessionStarted())
        return tracker

    def _continuation_expired(self, tracker: DialogueStateTracker) -> bool:
        config = self.domain.session_config if self.domain else None
        if config is None or not config.are_sessions_enabled():
            return False
        last_message_at = _continued_after(tracker)
        return last_message_at is not None and time.time() - last_message_at > config.session_expiration_time * 60


def continuation(tracker: DialogueStateTracker) -> List[Event]:
    """The events that continue ``tracker``'s session in a new one, in the state it is in now."""
    last_message = tracker.get_last_event_for(UserUttered)
    events: List[Event] = [SessionStarted(metadata={LAST_MESSAGE_AT: last_message.timestamp if last_message else None})]
    events += [
        SlotSet(slot.name, slot.value)
        for slot in tracker.slots.values()
        if slot.value != slot.initial_value
    ]
    if tracker.active_loop_name:
        events.append(ActiveLoop(tracker.active_loop_name))
    if tracker.is_paused():
        events.append(ConversationPaused())
    events.append(ActionExecuted(ACTION_LISTEN_NAME))
    return events


def _turn_ended(tracker: DialogueStateTracker) -> bool:
    last = tracker.events[-1] if tracker.events else None
    return isinstance(last, ActionExecuted) and last.action_name == ACTION_LISTEN_NAME


def _messages_in_session(tracker: DialogueStateTracker) -> int:
    # Not applied_events(): it folds the messages a form took on its happy path away.
    count = 0
    for event in reversed(tracker.events):
        if isinstance(event, SessionStarted):
            break
        count += isinstance(event, UserUttered)
    return count


def _continued_after(tracker: DialogueStateTracker) -> Optional[float]:
    """The marker's time of the last visitor message, if the session is a continuation nobody wrote in yet."""
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            return None
        if isinstance(event, SessionStarted):
            return (event.metadata or {}).get(LAST_MESSAGE_AT)
    return None
