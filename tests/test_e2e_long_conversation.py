"""A long conversation with the real servers: its sessions continue every SESSION_TURN_LIMIT messages, and
nothing a visitor sees or staff read changes because of it."""

import sqlite3
import uuid

from clinic_assistant.store.consultations import list_requests
from clinic_assistant.store.db import engine_for
from tests.conftest import SESSION_TURN_LIMIT, RestClient, wait_for

QUESTIONS = ["what is crps", "what are the symptoms", "how is it treated", "what are the two types"]


def test_offers_forms_and_the_transcript_survive_continuations(running_assistant, clinic_database):
    sender, say = f"long-{uuid.uuid4().hex[:12]}", running_assistant.say
    sent = []

    def message(text: str) -> str:
        sent.append(text)
        return say(sender, text)

    # Fill the session up to one message before the limit, so the offer below is made in the last turn
    # before a continuation and taken up in the first turn after it.
    for n in range(SESSION_TURN_LIMIT - 1):
        assert message(QUESTIONS[n % len(QUESTIONS)])
    assert "evidence?" in message("can ketamine help with crps")
    assert "2021" in message("yes please"), "the offer crossed the continuation"

    # A consultation form longer than a session.
    assert "What's your name?" in message("I'd like to book a consultation")
    assert "phone number" in message("Sam Ortiz")
    assert "email" in message("(850) 555-0163")
    assert "help with" in message("no thanks")
    assert "days and times" in message("CRPS in my right hand")
    assert "+18505550163" in message("evenings")
    assert "Sam Ortiz" in message("yes")
    message("yes send it")
    stored = wait_for(lambda: _requests_of(clinic_database.url, sender), what="the request row")
    assert len(stored) == 1 and stored[0].request.name == "Sam Ortiz"
    assert stored[0].request.help_with == "CRPS in my right hand"

    # After it, the assistant answers as at the start of a conversation.
    assert "mirror box" in message("how is it treated?")
    assert len(sent) > 3 * SESSION_TURN_LIMIT
    assert [event["text"] for event in running_assistant.user_events(sender)] == sent, "every message kept, in order"
    assert _sessions_in_tracker(running_assistant, sender) >= len(sent) // SESSION_TURN_LIMIT


def _requests_of(database_url: str, sender: str) -> list:
    conversation = RestClient.conversation(sender)
    return [r for r in list_requests(engine_for(database_url)) if r.request.conversation_id == conversation]


def _sessions_in_tracker(running_assistant, sender: str) -> int:
    with sqlite3.connect(running_assistant.tracker_db) as db:
        (count,) = db.execute(
            "SELECT count(*) FROM events WHERE sender_id = ? AND type_name = 'session_started'",
            (RestClient.conversation(sender),),
        ).fetchone()
    return count
