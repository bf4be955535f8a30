"""The consultation and handoff actions as the action server runs them, on a real clinic database."""

from pathlib import Path
from typing import Any, Dict, Optional

import pytest
from rasa_sdk.executor import CollectingDispatcher

from actions.consultation import (
    ActionCancelConsultation,
    ActionRequestHandoff,
    ActionSubmitConsultation,
    ValidateConsultationForm,
    ValidateHandoffForm,
)
from clinic_assistant import settings
from clinic_assistant.consultation_details import CONSULT_SLOTS
from clinic_assistant.processes import free_port
from clinic_assistant.store.consultations import handoffs_for, list_requests
from clinic_assistant.store.db import engine_for
from clinic_assistant.store.schema import upgrade
from tests.test_actions import run, tracker_with

FORM = ValidateConsultationForm()


@pytest.fixture
def database(monkeypatch, tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'clinic.db'}"
    upgrade(url)
    monkeypatch.setattr(settings, "CLINIC_DATABASE_URL", url)
    return url


def in_form(text: str, requested: Optional[str], intent: str = "nlu_fallback", **slots: Any):
    tracker = tracker_with({"text": text, "intent": {"name": intent}}, {"requested_slot": requested, **slots})
    tracker.active_loop = {"name": "consultation_form"}
    return tracker


def extract(method: str, tracker) -> Dict[str, Any]:
    return getattr(FORM, method)(CollectingDispatcher(), tracker, {})


def validate(slot: str, value: Any, tracker=None):
    dispatcher = CollectingDispatcher()
    result = getattr(FORM, f"validate_{slot}")(value, dispatcher, tracker or in_form("", slot), {})
    return result, [m["response"] for m in dispatcher.messages]


def test_details_given_before_they_are_asked_are_taken():
    tracker = in_form("I'm Maria, my number is 850 555 0142", "consult_name", "request_consultation")
    assert extract("extract_consult_name", tracker) == {"consult_name": "Maria"}
    assert extract("extract_consult_phone", tracker) == {"consult_phone": "+18505550142"}


def test_a_correction_later_replaces_the_number():
    tracker = in_form("actually my number is 850 555 0199", "consult_confirmed", consult_phone="+18505550142")
    assert extract("extract_consult_phone", tracker) == {"consult_phone": "+18505550199"}


def test_a_question_in_the_middle_is_not_taken_as_an_answer():
    tracker = in_form("wait, what is causalgia?", "consult_help_with", "crps")
    assert extract("extract_consult_help_with", tracker) == {}
    tracker = in_form("my crps and ketamine", "consult_help_with", "ketamine")
    assert extract("extract_consult_help_with", tracker) == {"consult_help_with": "my crps and ketamine"}


def test_no_to_the_email_question_skips_it():
    assert extract("extract_consult_email", in_form("no thanks", "consult_email", "deny")) == {"consult_email": "none"}
    assert validate("consult_email", "none")[0] == {"consult_email": "none"}


@pytest.mark.parametrize(
    "value, stored",
    [("850-555-0142", "+18505550142"), ("(850) 555 0142", "+18505550142"), ("+44 20 7946 0958", "+442079460958")],
)
def test_phone_numbers_are_stored_in_e164(value, stored):
    assert validate("consult_phone", value) == ({"consult_phone": stored}, [])


@pytest.mark.parametrize(
    "slot, value, response",
    [
        ("consult_phone", "123", "utter_consult_phone_invalid"),
        ("consult_name", "x" * 5000, "utter_consult_name_invalid"),
        ("consult_name", "😀🔥", "utter_consult_name_invalid"),
        ("consult_email", "jo smith@example.com", "utter_consult_email_invalid"),
        ("consult_help_with", "y" * 5000, "utter_consult_text_invalid"),
    ],
)
def test_bad_values_get_a_clear_re_ask(slot, value, response):
    result, responses = validate(slot, value)
    assert result[slot] is None and responses == [response]


def test_the_second_failure_offers_a_callback():
    tracker = in_form("12", "consult_phone", consult_failures={"consult_phone": 1})
    result, responses = validate("consult_phone", "12", tracker)
    assert responses == ["utter_consult_phone_invalid", "utter_consult_offer_callback"]
    assert result["consult_failures"] == {"consult_phone": 2}


def test_consent_is_kept_with_its_time():
    result, _ = validate("consult_consent", True)
    assert result["consult_consent"] is True and result["consult_consent_at"].endswith("+00:00")


def test_no_at_the_read_back_sends_nothing_and_asks_what_to_change():
    result, responses = validate("consult_confirmed", False)
    assert result == {"consult_confirmed": None} and responses == ["utter_consult_not_sent"]


def filled(**changes: Any) -> Dict[str, Any]:
    return {
        "consult_name": "Maria Lopez", "consult_phone": "+18505550142", "consult_email": "none",
        "consult_help_with": "'; DROP TABLE consultation_requests; -- 😀", "consult_best_times": "mornings",
        "consult_consent": True, "consult_consent_at": "2026-11-29T10:00:00+00:00", "consult_confirmed": True,
        **changes,
    }


async def test_submit_stores_the_request_and_gives_a_reference(database):
    messages, events = await run(ActionSubmitConsultation(), tracker_with(slots=filled()))
    [stored] = list_requests(engine_for(database))
    assert messages[0]["response"] == "utter_consult_submitted" and messages[0]["reference"] == stored.reference
    assert stored.request.phone == "+18505550142" and stored.request.consent_to_contact
    assert stored.request.help_with == "'; DROP TABLE consultation_requests; -- 😀"
    assert {e["name"] for e in events} == set(CONSULT_SLOTS) and all(e["value"] is None for e in events)


async def test_submitting_the_same_conversation_twice_stores_one_request(database):
    first, _ = await run(ActionSubmitConsultation(), tracker_with(slots=filled()))
    second, _ = await run(ActionSubmitConsultation(), tracker_with(slots=filled()))
    assert first[0]["reference"] == second[0]["reference"]
    assert len(list_requests(engine_for(database))) == 1


async def test_database_down_at_submit_tells_the_truth_and_keeps_the_details(monkeypatch):
    monkeypatch.setattr(settings, "CLINIC_DATABASE_URL", f"postgresql://postgres@127.0.0.1:{free_port()}/clinic")
    messages, events = await run(ActionSubmitConsultation(), tracker_with(slots=filled()))
    assert [m["response"] for m in messages] == ["utter_consult_store_down"]
    assert [(e["name"], e["value"]) for e in events] == [("consult_confirmed", None)]


async def test_cancel_forgets_the_details(database):
    messages, events = await run(ActionCancelConsultation(), tracker_with(slots=filled()))
    assert [m["response"] for m in messages] == ["utter_consult_cancelled"]
    assert all(e["value"] is None for e in events)
    assert list_requests(engine_for(database)) == []


async def test_handoff_records_who_how_and_why(database):
    tracker = tracker_with(slots={"handoff_contact": "jo@example.com please", "handoff_reason": "insurance",
                                  "consult_name": "Jo"})
    messages, _ = await run(ActionRequestHandoff(), tracker)
    assert messages[0]["response"] == "utter_handoff_requested" and messages[0]["contact"] == "jo@example.com"
    [handoff] = handoffs_for(engine_for(database), "test")
    assert (handoff.name, handoff.contact, handoff.contact_kind, handoff.reason) == (
        "Jo", "jo@example.com", "email", "insurance"
    )


def test_handoff_reuses_a_phone_number_given_in_the_form():
    tracker = tracker_with({"text": "call me back", "intent": {"name": "human_handoff"}},
                           {"consult_phone": "+18505550142", "requested_slot": None})
    assert ValidateHandoffForm().extract_handoff_contact(CollectingDispatcher(), tracker, {}) == {
        "handoff_contact": "+18505550142"
    }
