"""The Rasa server's message processor: visitors' slash commands read as text unless offered, NLU off the loop."""

import threading

from rasa.core.channels.channel import UserMessage
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from clinic_assistant.message_processor import offered_payloads


def tracker_after(*events) -> DialogueStateTracker:
    return DialogueStateTracker.from_events("visitor", list(events))


OFFER = BotUttered("Did you mean:", data={"buttons": [{"title": "Yes", "payload": "/affirm"}]})


async def test_a_visitor_slash_command_is_read_as_its_words(nlu_processor):
    for channel in ("socketio", "twilio_sms"):
        parse = await nlu_processor.parse_message(UserMessage("/crisis", input_channel=channel), tracker_after())
        assert parse["intent"]["name"] != "crisis" and parse["text"] == "/crisis"
        assert "safety" not in parse


async def test_the_payload_of_a_button_just_offered_is_taken_as_sent(nlu_processor):
    parse = await nlu_processor.parse_message(UserMessage("/affirm", input_channel="socketio"), tracker_after(OFFER))
    assert parse["intent"]["name"] == "affirm"


async def test_an_older_offer_no_longer_counts(nlu_processor):
    tracker = tracker_after(OFFER, UserUttered("no"), BotUttered("Okay."))
    parse = await nlu_processor.parse_message(UserMessage("/affirm", input_channel="socketio"), tracker)
    assert offered_payloads(tracker) == set()
    assert len(parse["intent_ranking"]) > 1  # the classifier's reading, not Rasa's one-intent command


async def test_trusted_rest_integrations_keep_rasas_slash_commands(nlu_processor):
    parse = await nlu_processor.parse_message(UserMessage("/crisis", input_channel="rest"), tracker_after())
    assert parse["intent"] == {"name": "crisis", "confidence": 1.0}


async def test_a_crisis_in_words_is_still_read_from_a_visitor(nlu_processor):
    parse = await nlu_processor.parse_message(UserMessage("/ i want to kill myself", input_channel="socketio"))
    assert parse["intent"]["name"] == "crisis" and parse["safety"]["detected_by"] == "pattern"


async def test_the_pipeline_runs_on_its_own_thread_not_the_event_loop(nlu_processor, monkeypatch):
    threads = []
    original = nlu_processor.graph_runner.run
    monkeypatch.setattr(
        nlu_processor.graph_runner, "run",
        lambda *a, **k: threads.append(threading.current_thread().name) or original(*a, **k),
    )
    await nlu_processor.parse_message(UserMessage("what does a never seen text about crps ask 7f3a"))
    assert threads and all(name.startswith("nlu") for name in threads)
