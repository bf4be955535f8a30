"""Start of a conversation: the notice of what this assistant is, the clinic profile as slots."""

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActionExecuted, EventType, SessionStarted, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from clinic_assistant.clinic_profile import load_profile


class ActionSessionStart(Action):
    """Rasa's session start, plus the clinic's contact details as slots.

    The profile is read at every new conversation, so an edit to clinic.yml
    reaches visitors without retraining or restarting anything.
    """

    def name(self) -> str:
        return "action_session_start"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        profile_slots = [SlotSet(name, value) for name, value in load_profile().as_slots().items()]
        dispatcher.utter_message(response="utter_notice")
        return [SessionStarted(), *profile_slots, ActionExecuted("action_listen")]
