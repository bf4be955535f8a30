"""Consultation requests over REST with the real servers, the clinic database and the clinic's webhook."""

import uuid

import pytest

from clinic_assistant.store.consultations import handoffs_for, list_requests
from clinic_assistant.store.db import engine_for
from tests.conftest import RestClient, wait_for


def conversation() -> str:
    return f"consult-{uuid.uuid4().hex[:12]}"


def request_of(database_url: str, sender: str):
    conversation = RestClient.conversation(sender)
    found = [r for r in list_requests(engine_for(database_url)) if r.request.conversation_id == conversation]
    return found[0] if found else None


def test_a_full_conversation_ends_with_a_stored_request_the_clinic_receives(
    running_assistant, clinic_database, clinic_webhook
):
    sender, say = conversation(), running_assistant.say
    assert "What's your name?" in say(sender, "I'd like to book a consultation")
    assert "phone number" in say(sender, "Maria Lopez")
    assert "doesn't look like a phone number" in say(sender, "call me on 555")
    assert "email" in say(sender, "(850) 555-0142")
    assert "help with" in say(sender, "no thanks")
    answer = say(sender, "wait, what is causalgia?")
    assert "causalgia" in answer.lower() and "help with" in answer  # answered, then the form goes on
    assert "days and times" in say(sender, "CRPS in my left foot, interested in ketamine")
    assert "+18505550142" in say(sender, "weekday mornings after 9")
    read_back = say(sender, "yes")
    assert "Maria Lopez" in read_back and "weekday mornings" in read_back and "calls and texts: yes" in read_back
    reply = say(sender, "yes send it")
    stored = wait_for(lambda: request_of(clinic_database.url, sender), what="the request row")
    assert stored.reference in reply
    assert (stored.request.phone, stored.request.consent_to_contact) == ("+18505550142", True)
    assert stored.request.consent_at is not None and stored.request.email is None
    payload = wait_for(lambda: clinic_webhook.payloads().get(stored.reference), what="the webhook delivery")
    assert payload["phone"] == "+18505550142" and payload["name"] == "Maria Lopez"
    assert clinic_webhook.requests[stored.reference] == 2  # the first try failed on purpose, the second counted
    delivered = wait_for(lambda: request_of(clinic_database.url, sender).status == "delivered", what="delivered")
    assert delivered
    for service in ("rasa", "actions", "delivery"):  # contact data never reaches a log
        log = running_assistant.log(service)
        assert "Maria Lopez" not in log and "555-0142" not in log and "5550142" not in log, service


def test_details_given_up_front_and_a_correction_at_the_read_back(running_assistant, clinic_database):
    sender, say = conversation(), running_assistant.say
    assert "email" in say(sender, "I want to book a consult, I'm Dana, my number is 850 555 0171")
    say(sender, "dana@example.com")
    say(sender, "burning pain in my hand")
    say(sender, "afternoons")
    assert "+18505550171" in say(sender, "no")  # no calls or texts; the read-back follows
    assert "What would you like to change" in say(sender, "no")
    assert "+18505550199" in say(sender, "actually my number is 850 555 0199")
    say(sender, "yes")
    stored = wait_for(lambda: request_of(clinic_database.url, sender), what="the request row")
    assert (stored.request.name, stored.request.phone, stored.request.email) == ("Dana", "+18505550199",
                                                                                 "dana@example.com")
    assert stored.request.consent_to_contact is False


def test_cancel_stores_nothing(running_assistant, clinic_database):
    sender, say = conversation(), running_assistant.say
    say(sender, "sign me up for a consultation")
    say(sender, "Lee")
    assert "nothing was saved" in say(sender, "never mind")
    assert request_of(clinic_database.url, sender) is None
    assert "phone number" not in say(sender, "what are the symptoms of crps")


def test_the_form_survives_an_action_server_restart(running_assistant, clinic_database):
    sender, say = conversation(), running_assistant.say
    say(sender, "book a consultation")
    assert "phone number" in say(sender, "Robin")
    running_assistant.restart_actions()
    assert "email" in say(sender, "850 555 0133")  # the form goes on from the tracker
    assert "Robin" in " ".join([say(sender, "no"), say(sender, "knee"), say(sender, "evenings"), say(sender, "yes")])


def test_a_person_is_asked_for_and_the_handoff_is_recorded(running_assistant, clinic_database):
    sender, say = conversation(), running_assistant.say
    assert "no one reads this chat live" in say(sender, "can i talk to a real person")
    assert "talk about" in say(sender, "850 555 0188")
    reply = say(sender, "questions about my insurance")
    assert "+18505550188" in reply and "not straight away" in reply
    conversation_id = RestClient.conversation(sender)
    [handoff] = wait_for(lambda: handoffs_for(engine_for(clinic_database.url), conversation_id), what="the handoff row")
    assert (handoff.contact, handoff.reason) == ("+18505550188", "questions about my insurance")


def test_database_down_at_submit_tells_the_truth_and_writes_nothing(running_assistant, clinic_database):
    if clinic_database.proxy is None:
        pytest.skip("needs PostgreSQL (behind a proxy the test can cut); set CLINIC_TEST_POSTGRES_URL")
    sender, say = conversation(), running_assistant.say
    for text in ["book a consultation", "Kim", "850 555 0144", "no", "ankle", "any time", "yes"]:
        say(sender, text)
    clinic_database.proxy.cut()
    try:
        assert "nothing was saved" in say(sender, "yes")
    finally:
        clinic_database.proxy.restore()
    assert request_of(clinic_database.url, sender) is None
    # the details are still in the conversation: asking again goes straight to the read-back
    assert "Kim" in say(sender, "book a consultation")
    say(sender, "yes")
    assert wait_for(lambda: request_of(clinic_database.url, sender), what="the request row")


def test_yes_after_the_offer_at_the_end_of_an_answer_starts_the_form(running_assistant):
    sender, say = conversation(), running_assistant.say
    assert "evidence?" in say(sender, "can ketamine help with crps")
    assert "opioids?" in say(sender, "yes")
    assert "request a consultation?" in say(sender, "yes")
    assert "What's your name?" in say(sender, "yes please")
