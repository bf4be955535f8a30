"""Crisis and emergency turns: flag the conversation for staff.

The reply itself is a domain response sent by Rasa before this action runs,
so it goes out even when this server or the clinic database is down.
"""

from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from clinic_assistant import settings
from clinic_assistant.background_recorder import BackgroundRecorder
from clinic_assistant.store.db import Flag


@lru_cache(maxsize=1)
def recorder() -> BackgroundRecorder:
    return BackgroundRecorder(settings.CLINIC_DATABASE_URL, settings.RECORD_SPOOL_PATH)


def flag_of(tracker: Tracker) -> Flag:
    """The flag for the conversation's latest message."""
    parse = tracker.latest_message or {}
    safety = parse.get("safety") or {}
    return Flag(
        conversation_id=tracker.sender_id,
        channel=tracker.get_latest_input_channel() or "unknown",
        kind=safety.get("kind") or (parse.get("intent") or {}).get("name"),
        detected_by=safety.get("detected_by") or "model",
        message=parse.get("text") or "",
        flagged_at=datetime.now(timezone.utc),
    )


class ActionFlagConversation(Action):
    """Record a crisis or emergency flag without holding up the conversation."""

    def name(self) -> str:
        return "action_flag_conversation"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        recorder().submit(flag_of(tracker))
        return []
