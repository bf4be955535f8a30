"""The custom actions, run as the action server runs them."""

from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.answers import ActionClarify, ActionTellMore
from actions.session import ActionSessionStart
from clinic_assistant.clinic_profile import ClinicProfile


def tracker_with(parse: Optional[Dict[str, Any]] = None, slots: Optional[Dict[str, Any]] = None) -> Tracker:
    return Tracker.from_dict(
        {
            "sender_id": "test",
            "slots": slots or {},
            "latest_message": parse or {},
            "events": [],
            "paused": False,
            "latest_event_time": None,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": None,
        }
    )


def selector_parse(intent: str, key: str, confidence: float = 0.9, ranking: Optional[List[dict]] = None) -> dict:
    prediction = {
        "response": {"utter_action": f"utter_{key}", "confidence": confidence, "intent_response_key": key},
        "ranking": ranking or [{"intent_response_key": key, "confidence": confidence}],
    }
    return {
        "text": "question",
        "intent": {"name": intent, "confidence": 0.9},
        "intent_ranking": [{"name": intent, "confidence": 0.9}],
        "response_selector": {"all_retrieval_intents": ["crps", "ketamine"], "default": prediction},
    }


async def run(action, tracker: Tracker):
    dispatcher = CollectingDispatcher()
    events = await action.run(dispatcher, tracker, {})
    return dispatcher.messages, events


async def test_session_start_loads_the_clinic_profile(monkeypatch):
    monkeypatch.setenv("CLINIC_PHONE", "(850) 555-0100")
    messages, events = await run(ActionSessionStart(), tracker_with())
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert "(850) 555-0100" in slots["clinic_contact"]
    assert events[0]["event"] == "session_started"
    assert (events[-1]["event"], events[-1]["name"]) == ("action", "action_listen")
    assert [m["response"] for m in messages] == ["utter_notice"]  # what this assistant is, first


async def test_session_start_never_invents_missing_details(monkeypatch):
    for field in ("PHONE", "WEBSITE", "ADDRESS", "HOURS"):
        monkeypatch.setenv(f"CLINIC_{field}", "")
    _, events = await run(ActionSessionStart(), tracker_with())
    slots = {e["name"]: e["value"] for e in events if e["event"] == "slot"}
    assert slots == ClinicProfile().as_slots()


async def test_yes_gives_the_offered_answer_and_chains_its_offer():
    tracker = tracker_with(slots={"more_offered": True, "more_response": "utter_ketamine/overview"})
    messages, events = await run(ActionTellMore(), tracker)
    assert [m["response"] for m in messages] == ["utter_ketamine/overview"]
    assert SlotSet("more_response", "utter_ketamine/evidence") in events


async def test_yes_with_nothing_offered_asks_what_to_explain():
    messages, events = await run(ActionTellMore(), tracker_with(slots={"more_offered": False}))
    assert [m["response"] for m in messages] == ["utter_what_more"]
    assert SlotSet("more_offered", False) in events


async def test_clarify_suggests_the_closest_answers_as_buttons():
    ranking = [
        {"intent_response_key": "crps/type_1", "confidence": 0.3},
        {"intent_response_key": "crps/type_2", "confidence": 0.28},
        {"intent_response_key": "crps/types", "confidence": 0.2},
        {"intent_response_key": "ketamine/evidence", "confidence": 0.02},
    ]
    parse = selector_parse("crps", "crps/type_1", 0.3, ranking)
    parse["intent"] = {"name": "nlu_fallback", "confidence": 0.35}
    parse["intent_ranking"].insert(0, {"name": "nlu_fallback", "confidence": 0.35})
    messages, _ = await run(ActionClarify(), tracker_with(parse))
    assert messages[0]["response"] == "utter_clarify"
    assert [b["payload"] for b in messages[0]["buttons"]] == [
        "What is CRPS type 1?", "What is CRPS type 2?", "What are the types of CRPS?",
    ]


async def test_clarify_without_a_plausible_answer_asks_to_rephrase():
    parse = selector_parse("greet", "crps/what_is", 0.5)
    parse["intent"] = {"name": "nlu_fallback", "confidence": 0.45}
    parse["intent_ranking"] = [
        {"name": "nlu_fallback", "confidence": 0.45},
        {"name": "out_of_scope", "confidence": 0.3},
    ]
    messages, events = await run(ActionClarify(), tracker_with(parse))
    assert [m["response"] for m in messages] == ["utter_not_understood"]
    assert SlotSet("more_offered", False) in events


async def test_yes_to_a_consultation_offer_starts_the_form():
    tracker = tracker_with(slots={"more_offered": True, "more_response": "consultation_form"})
    messages, events = await run(ActionTellMore(), tracker)
    assert messages == []
    assert events[-1] == {"event": "followup", "name": "consultation_form", "timestamp": None}
