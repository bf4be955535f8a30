"""Following up article answers: giving the "more" offered, and asking when unsure."""

from typing import Any, Dict, List, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from clinic_assistant.answers import CONSULTATION_FORM, load_answers
from clinic_assistant.suggestions import suggested_answers

NOTHING_OFFERED = [SlotSet("more_offered", False), SlotSet("more_response", None)]


def remember_offer(response: Optional[str]) -> List[EventType]:
    """Slots recording the answer that ``response`` offers next, if any."""
    answer = load_answers().get(response or "")
    if answer is None or answer.more is None:
        return list(NOTHING_OFFERED)
    return [SlotSet("more_offered", True), SlotSet("more_response", answer.more)]


class ActionTellMore(Action):
    """Give the answer the previous one offered ("Want to know more?" - "yes")."""

    def name(self) -> str:
        return "action_tell_more"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        response = tracker.get_slot("more_response")
        if not response:
            dispatcher.utter_message(response="utter_what_more")
            return list(NOTHING_OFFERED)
        if response == CONSULTATION_FORM:  # "Want to request a consultation?" - "yes"
            return [*NOTHING_OFFERED, FollowupAction(CONSULTATION_FORM)]
        dispatcher.utter_message(response=response)
        return remember_offer(response)


class ActionClarify(Action):
    """Low confidence: suggest the closest answers instead of guessing."""

    def name(self) -> str:
        return "action_clarify"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        answers = suggested_answers(tracker.latest_message, load_answers())
        if answers:
            buttons = [{"title": a.title, "payload": a.question} for a in answers]
            dispatcher.utter_message(response="utter_clarify", buttons=buttons)
        else:
            dispatcher.utter_message(response="utter_not_understood")
        return list(NOTHING_OFFERED)
