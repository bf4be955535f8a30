"""The safety actions as the action server runs them, writing a real clinic database."""

from pathlib import Path

import pytest
from rasa_sdk.executor import CollectingDispatcher

import actions.reach_out
import actions.safety
from actions.reach_out import ActionRequestReachOut, ValidateReachOutForm
from actions.safety import ActionFlagConversation
from clinic_assistant.background_recorder import BackgroundRecorder
from clinic_assistant.store.db import engine_for, flags_for, reach_outs_for
from tests.test_actions import run, tracker_with


@pytest.fixture
def recorder(monkeypatch, tmp_path: Path) -> BackgroundRecorder:
    recorder = BackgroundRecorder(f"sqlite:///{tmp_path / 'clinic.db'}", tmp_path / "spool.jsonl")
    monkeypatch.setattr(actions.safety, "recorder", lambda: recorder)
    monkeypatch.setattr(actions.reach_out, "recorder", lambda: recorder)
    return recorder


def with_channel(tracker, text: str):
    tracker.events.append({"event": "user", "text": text, "input_channel": "rest"})
    return tracker


async def test_flag_action_returns_at_once_and_the_flag_is_stored(recorder):
    parse = {"text": "i want to die", "intent": {"name": "crisis"},
             "safety": {"kind": "crisis", "detected_by": "pattern", "rule": "want_die"}}
    messages, events = await run(ActionFlagConversation(), with_channel(tracker_with(parse), "i want to die"))
    assert (messages, events) == ([], [])
    await recorder.drain()
    [flag] = flags_for(engine_for(recorder.database_url), "test")
    assert (flag.kind, flag.detected_by, flag.channel, flag.message) == ("crisis", "pattern", "rest", "i want to die")


async def test_a_model_only_crisis_is_flagged_as_found_by_the_model(recorder):
    parse = {"text": "I've made up my mind", "intent": {"name": "crisis"},
             "safety": {"kind": "crisis", "detected_by": "model", "rule": None}}
    await run(ActionFlagConversation(), tracker_with(parse))
    await recorder.drain()
    assert flags_for(engine_for(recorder.database_url), "test")[0].detected_by == "model"


@pytest.mark.parametrize("text", ["call me on 850-555-0100 after 5", "jo.smith@example.com", "+44 20 7946 0958"])
def test_contact_with_a_phone_number_or_email_is_kept_verbatim(text):
    dispatcher = CollectingDispatcher()
    result = ValidateReachOutForm().validate_reach_out_contact(text, dispatcher, tracker_with(), {})
    assert result == {"reach_out_contact": text} and dispatcher.messages == []


@pytest.mark.parametrize("text", ["whenever", "555", "jo@", ""])
def test_contact_without_one_is_asked_again_kindly(text):
    dispatcher = CollectingDispatcher()
    result = ValidateReachOutForm().validate_reach_out_contact(text, dispatcher, tracker_with(), {})
    assert result == {"reach_out_contact": None}
    assert [m["response"] for m in dispatcher.messages] == ["utter_reach_out_contact_invalid"]


async def test_reach_out_request_goes_to_staff_with_what_was_written(recorder):
    tracker = tracker_with(slots={"reach_out_contact": "(850) 555-0100, mornings are best"})
    messages, events = await run(ActionRequestReachOut(), tracker)
    assert [m["response"] for m in messages] == ["utter_reach_out_requested"]
    assert messages[0]["contact"] == "+18505550100"
    await recorder.drain()
    [request] = reach_outs_for(engine_for(recorder.database_url), "test")
    assert (request.contact, request.contact_kind, request.message) == (
        "+18505550100", "phone", "(850) 555-0100, mornings are best"
    )
