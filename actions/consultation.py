"""Consultation requests and "talk to a person" handoffs.

``ValidateConsultationForm`` takes values from any message while the form
runs (``extract_*``), so details given early or corrected later are used,
and checks them (``validate_*``): phone numbers with libphonenumber (US by
default, stored in E.164), e-mail with email-validator. A question in the
middle of the form is left unextracted, so the form is rejected and the
rules answer it before the form asks again.
"""

import asyncio
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from clinic_assistant import settings
from clinic_assistant.consultation_details import (
    CONSULT_SLOTS,
    MAX_TEXT,
    answers_the_question,
    name_in,
    said_no,
    said_yes,
    summary,
    valid_email,
    valid_name,
    valid_phone,
)
from clinic_assistant.contact import find_contact, find_email, find_phone
from clinic_assistant.store.consultations import (
    ConsultationRequest,
    HandoffRequest,
    record_handoff,
    submit_consultation,
)
from clinic_assistant.store.db import StoreUnavailable, engine_for

FAILURES_BEFORE_CALLBACK = 2
SMS_CHANNEL = "twilio_sms"


def _text(tracker: Tracker) -> str:
    return (tracker.latest_message or {}).get("text") or ""


def _texting_number(tracker: Tracker) -> Optional[str]:
    """The number a text came from; only the SMS channel sets it (the REST channel may not pose as SMS)."""
    if tracker.get_latest_input_channel() != SMS_CHANNEL:
        return None
    return ((tracker.latest_message or {}).get("metadata") or {}).get("sms_from")


def _asked(tracker: Tracker, slot: str) -> bool:
    return tracker.get_slot("requested_slot") == slot and answers_the_question(tracker.latest_message or {})


class ValidateConsultationForm(FormValidationAction):
    def name(self) -> str:
        return "validate_consultation_form"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        events = await super().run(dispatcher, tracker, domain)
        changed = {e["name"]: e["value"] for e in events if e.get("event") == "slot"}
        if not changed:
            # Nothing in this message for the form: Rasa then rejects the form and the
            # rules answer the message (a question, "cancel", a crisis).
            return events
        return [*events, SlotSet("consult_summary", summary({**tracker.slots, **changed}))]

    # -- extraction: what this message says, asked or not --------------------
    def extract_consult_name(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict:
        said = name_in(_text(tracker))
        if said:
            return {"consult_name": said}
        return {"consult_name": _text(tracker).strip()} if _asked(tracker, "consult_name") else {}

    def extract_consult_phone(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict:
        found = find_phone(_text(tracker))
        if found:
            return {"consult_phone": found}
        texting = _texting_number(tracker)
        if texting and tracker.get_slot("requested_slot") == "consult_phone" and said_yes(tracker.latest_message or {}):
            return {"consult_phone": texting}  # "yes" to "shall we call you at this number?"
        return {"consult_phone": _text(tracker).strip()} if _asked(tracker, "consult_phone") else {}

    def extract_consult_email(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict:
        found = find_email(_text(tracker))
        if found:
            return {"consult_email": found}
        if tracker.get_slot("requested_slot") == "consult_email" and said_no(tracker.latest_message or {}):
            return {"consult_email": "none"}
        return {"consult_email": _text(tracker).strip()} if _asked(tracker, "consult_email") else {}

    def extract_consult_help_with(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict:
        return {"consult_help_with": _text(tracker).strip()} if _asked(tracker, "consult_help_with") else {}

    def extract_consult_best_times(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict:
        return {"consult_best_times": _text(tracker).strip()} if _asked(tracker, "consult_best_times") else {}

    # -- validation ---------------------------------------------------------
    def validate_consult_name(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict:
        name = valid_name(value)
        if name:
            return {"consult_name": name}
        return self._retry("consult_name", "utter_consult_name_invalid", dispatcher, tracker)

    def validate_consult_phone(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict:
        phone = valid_phone(value)
        if phone:
            return {"consult_phone": phone}
        return self._retry("consult_phone", "utter_consult_phone_invalid", dispatcher, tracker)

    def validate_consult_email(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict:
        email = "none" if value == "none" else valid_email(value)
        if email:
            return {"consult_email": email}
        return self._retry("consult_email", "utter_consult_email_invalid", dispatcher, tracker)

    def validate_consult_help_with(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict:
        return self._free_text("consult_help_with", value, dispatcher, tracker)

    def validate_consult_best_times(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict:
        return self._free_text("consult_best_times", value, dispatcher, tracker)

    def validate_consult_consent(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict:
        # Consent is kept with the moment it was given (or refused).
        return {"consult_consent": bool(value), "consult_consent_at": datetime.now(timezone.utc).isoformat()}

    def validate_consult_confirmed(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict:
        if value:
            return {"consult_confirmed": True}
        dispatcher.utter_message(response="utter_consult_not_sent")
        return {"consult_confirmed": None}

    def _free_text(self, slot: str, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker) -> Dict:
        text = str(value or "").strip()
        if 0 < len(text) <= MAX_TEXT:
            return {slot: text}
        return self._retry(slot, "utter_consult_text_invalid", dispatcher, tracker)

    def _retry(self, slot: str, response: str, dispatcher: CollectingDispatcher, tracker: Tracker) -> Dict:
        """Ask again; from the second failed try on, also offer a staff callback."""
        failures = dict(tracker.get_slot("consult_failures") or {})
        failures[slot] = failures.get(slot, 0) + 1
        dispatcher.utter_message(response=response)
        if failures[slot] >= FAILURES_BEFORE_CALLBACK:
            dispatcher.utter_message(response="utter_consult_offer_callback")
        return {slot: None, "consult_failures": failures}


def _request_from(tracker: Tracker) -> ConsultationRequest:
    consent_at = tracker.get_slot("consult_consent_at")
    consent = bool(tracker.get_slot("consult_consent"))
    email = tracker.get_slot("consult_email")
    return ConsultationRequest(
        conversation_id=tracker.sender_id,
        channel=tracker.get_latest_input_channel() or "unknown",
        name=tracker.get_slot("consult_name"),
        phone=tracker.get_slot("consult_phone"),
        email=None if email in (None, "none") else email,
        help_with=tracker.get_slot("consult_help_with"),
        best_times=tracker.get_slot("consult_best_times"),
        consent_to_contact=consent,
        consent_at=datetime.fromisoformat(consent_at) if consent and consent_at else None,
    )


def _cleared() -> List[EventType]:
    return [SlotSet(slot, None) for slot in CONSULT_SLOTS]


class ActionSubmitConsultation(Action):
    """Store the request and its outbox entry; tell the patient the reference."""

    def name(self) -> str:
        return "action_submit_consultation"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        engine = engine_for(settings.CLINIC_DATABASE_URL)
        try:
            reference = await asyncio.to_thread(
                submit_consultation, engine, _request_from(tracker), datetime.now(timezone.utc)
            )
        except StoreUnavailable:
            # Nothing half-written (one transaction); the details stay in the
            # conversation so "book a consultation" goes straight to confirming.
            dispatcher.utter_message(response="utter_consult_store_down")
            return [SlotSet("consult_confirmed", None)]
        dispatcher.utter_message(response="utter_consult_submitted", reference=reference)
        return _cleared()


class ActionCancelConsultation(Action):
    """Stop a form: nothing is stored, what was typed is forgotten by the form."""

    def name(self) -> str:
        return "action_cancel_consultation"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        dispatcher.utter_message(response="utter_consult_cancelled")
        return [*_cleared(), SlotSet("handoff_contact", None), SlotSet("handoff_reason", None)]


class ValidateHandoffForm(FormValidationAction):
    def name(self) -> str:
        return "validate_handoff_form"

    def extract_handoff_contact(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict:
        if find_contact(_text(tracker)):
            return {"handoff_contact": _text(tracker).strip()}
        known = _known_contact(tracker)
        if known and tracker.get_slot("handoff_contact") is None:
            return {"handoff_contact": known}
        return {"handoff_contact": _text(tracker).strip()} if _asked(tracker, "handoff_contact") else {}

    def extract_handoff_reason(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> Dict:
        return {"handoff_reason": _text(tracker).strip()} if _asked(tracker, "handoff_reason") else {}

    def validate_handoff_contact(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict:
        if find_contact(str(value or "")):
            return {"handoff_contact": str(value).strip()}
        dispatcher.utter_message(response="utter_reach_out_contact_invalid")
        return {"handoff_contact": None}

    def validate_handoff_reason(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict
    ) -> Dict:
        text = str(value or "").strip()[:MAX_TEXT]
        return {"handoff_reason": text or None}


def _known_contact(tracker: Tracker) -> Optional[str]:
    """A phone number already given in the consultation form, so it isn't asked twice."""
    return tracker.get_slot("consult_phone") if valid_phone(tracker.get_slot("consult_phone")) else None


class ActionRequestHandoff(Action):
    """Record who wants a person, how to reach them and why; say honestly what happens next."""

    def name(self) -> str:
        return "action_request_handoff"

    async def run(self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: DomainDict) -> List[EventType]:
        written = tracker.get_slot("handoff_contact") or ""
        contact = find_contact(written)
        handoff = HandoffRequest(
            conversation_id=tracker.sender_id,
            channel=tracker.get_latest_input_channel() or "unknown",
            name=valid_name(tracker.get_slot("consult_name")),
            contact=contact.value,
            contact_kind=contact.kind,
            reason=tracker.get_slot("handoff_reason") or "",
            created_at=datetime.now(timezone.utc),
        )
        try:
            await asyncio.to_thread(record_handoff, engine_for(settings.CLINIC_DATABASE_URL), handoff)
        except StoreUnavailable:
            dispatcher.utter_message(response="utter_handoff_store_down")
            return []
        dispatcher.utter_message(response="utter_handoff_requested", contact=contact.value)
        return [*_cleared(), SlotSet("handoff_contact", None), SlotSet("handoff_reason", None)]
