"""Crisis and emergency turns: flag the conversation for staff.

The reply itself is a domain response sent by Rasa before this action runs,
so it goes out even when this server or the clinic database is down.
"""

from datetime import datetime, timezone
from functools import lru_cache
from typing import Any, Dict, List, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher

from clinic_assistant import settings
from clinic_assistant.background_recorder import BackgroundRecorder
from clinic_assistant.store.db import Flag


@lru_cache(maxsize=1)
def recorder() -> BackgroundRecorder:
    return BackgroundRecorder(settings.CLINIC_DATABASE_URL, settings.RECORD_SPOOL_PATH)


def flag_of(tracker: Tracker) -> Optional[Flag]:
    """The flag for the conversation's latest message, if the safety layer found a risk in it.

    Only the safety layer's reading counts: an intent alone (a trusted integration's "/crisis") gets the reply
    but never a flag, so nothing but the safety layer can put a conversation at the top of the staff queue.
    """
    parse = tracker.latest_message or {}
    safety = parse.get("safety")
    if not safety:
        return None
    return Flag(
        conversation_id=tracker.sender_id,
        channel=tracker.get_latest_input_channel() or "unknown",
        kind=safety["kind"],
        detected_by=safety["detected_by"],
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
        flag = flag_of(tracker)
        if flag is not None:
            recorder().submit(flag)
        return []
