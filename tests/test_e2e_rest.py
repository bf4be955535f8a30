"""The real Rasa server and action server, asked questions over REST."""

import json
import urllib.request
import uuid

import pytest


def conversation() -> str:
    return f"e2e-{uuid.uuid4().hex[:12]}"


@pytest.mark.parametrize(
    "question, facts",
    [
        ("wat r the symptoms", ["pain", "color", "swelling", "temperature"]),
        ("is crps all in my head?", ["not", "mental health disorder"]),
        ("does ketamine work better than opioids", ["addiction", "tapering"]),
        ("what triggers crps", ["fracture", "deep cut", "surgery", "cardiac"]),
        ("whats the evidence that ketamine works", ["2021", "four weeks", "half"]),
        ("what is a sympathectomy", ["last", "sympathetic nervous system"]),
        ("what meds are used for crps", ["tricyclic", "blood pressure", "gabapentin"]),
        ("is mirror therapy a thing for crps", ["mirror", "brain"]),
        ("is there a clinic near destin", ["Crane Center", "Destin", "ketamine-assisted psychotherapy"]),
    ],
)
def test_questions_get_the_articles_facts(running_assistant, question, facts):
    reply = running_assistant.say(conversation(), question)
    for fact in facts:
        assert fact.lower() in reply.lower(), reply


def test_follow_ups_in_one_conversation(running_assistant):
    sender = conversation()
    assert "Type II" in running_assistant.say(sender, "what are the types?")
    assert "causalgia" in running_assistant.say(sender, "and type 2?")
    reply = running_assistant.say(sender, "how is it treated?")
    assert "medications" in reply and "mirror box" in reply


def test_yes_after_want_to_know_more_gives_the_offered_answer(running_assistant):
    sender = conversation()
    assert "evidence?" in running_assistant.say(sender, "can ketamine help with crps")
    assert "2021" in running_assistant.say(sender, "yes please")
    assert "oxycodone" in running_assistant.say(sender, "sure")


@pytest.mark.parametrize(
    "question",
    ["how much does ketamine cost", "does insurance cover it", "what dose of ketamine would I get",
     "how many sessions will i need", "can i drive after treatment", "is it safe while pregnant",
     "what are your opening hours"],
)
def test_what_the_article_does_not_say_is_not_invented(running_assistant, question):
    reply = running_assistant.say(conversation(), question)
    assert "can't answer" in reply or "don't have" in reply or "clinician needs" in reply, reply
    assert not any(ch.isdigit() for ch in reply), reply


def test_no_diagnosis_but_symptoms_and_an_evaluation(running_assistant):
    reply = running_assistant.say(conversation(), "do i have crps? my foot burns and looks purple")
    assert "can't tell" in reply and "evaluat" in reply, reply


def test_off_topic_is_redirected(running_assistant):
    reply = running_assistant.say(conversation(), "can you write me a poem about pizza")
    assert "only help with questions about CRPS" in reply, reply


def test_bot_question_is_answered_truthfully(running_assistant):
    assert "automated assistant" in running_assistant.say(conversation(), "am i talking to a real person?")


def test_asking_for_a_person_is_honest_that_no_one_is_live(running_assistant):
    reply = running_assistant.say(conversation(), "i want to talk to a human")
    assert "no one reads this chat live" in reply and "phone number or email" in reply, reply


def test_gibberish_gets_a_clarifying_question_not_an_answer(running_assistant):
    messages = running_assistant.replies(conversation(), "zxqv blorp flim")
    text = messages[0]["text"]
    assert "rephrase" in text or "Did you mean" in text or "only help with questions" in text, text
    assert messages[0].get("buttons")


def test_the_rasa_server_is_ready(running_assistant):
    with urllib.request.urlopen(f"{running_assistant.base_url}/webhooks/readiness/", timeout=10) as reply:
        assert reply.status == 200 and json.load(reply) == {"status": "ready"}


def test_every_process_logs_through_the_projects_handler(running_assistant):
    # The project's text format (LOG_FORMAT=text): Rasa and rasa_sdk read logging.yml, rather than coloredlogs'
    # "INFO     root  - ...".
    expected = {
        "rasa": " INFO root: Rasa server is up and running.",
        "actions": " INFO rasa_sdk.endpoint: Action endpoint is up and running",
        "console": " INFO clinic_assistant.console.app: Staff console at ",
        "delivery": " INFO clinic_assistant.delivery.worker: Delivering consultation requests to ",
    }
    for service, line in expected.items():
        assert line in running_assistant.log(service), service
