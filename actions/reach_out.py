"""After a crisis reply: "Would you like someone from the clinic's staff to reach out?"

A one-question form asks how to reach the visitor. Whatever they write is
kept verbatim with the phone number or e-mail address found in it, and
handed to staff through the clinic database (in the background, so a
database outage never loses it or holds up the reply).
"""

from datetime import datetime, timezone
from typing import Any, Dict, List

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.safety import recorder
from clinic_assistant.contact import find_contact
from clinic_assistant.store.db import ReachOut


class ValidateReachOutForm(FormValidationAction):
    """The contact must hold a phone number or an e-mail address."""

    def name(self) -> str:
        return "validate_reach_out_form"

    def validate_reach_out_contact(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Dict[str, Any]:
        contact = find_contact(str(value or ""))
        if contact is None:
            dispatcher.utter_message(response="utter_reach_out_contact_invalid")
            return {"reach_out_contact": None}
        return {"reach_out_contact": str(value).strip()}


class ActionRequestReachOut(Action):
    """Hand the visitor's contact details to staff and say what happens next."""

    def name(self) -> str:
        return "action_request_reach_out"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        written = tracker.get_slot("reach_out_contact") or ""
        contact = find_contact(written)
        if contact is None:  # the form validated it; only a changed slot can get here
            dispatcher.utter_message(response="utter_reach_out_contact_invalid")
            return [SlotSet("reach_out_contact", None)]
        recorder().submit(
            ReachOut(
                conversation_id=tracker.sender_id,
                channel=tracker.get_latest_input_channel() or "unknown",
                contact=contact.value,
                contact_kind=contact.kind,
                message=written,
                requested_at=datetime.now(timezone.utc),
            )
        )
        dispatcher.utter_message(response="utter_reach_out_requested", contact=contact.value)
        return [SlotSet("reach_out_contact", None), SlotSet("reach_out_offered", False)]
