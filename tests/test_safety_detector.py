"""The deterministic crisis/emergency layer, on spaCy docs from the project's pipeline."""

import pytest
import spacy

from clinic_assistant.nlp.build_model import ensure_model
from clinic_assistant.nlp.safety_detector import SafetyDetector, SafetyMatch, SafetyReading, token_key
from clinic_assistant.nlp.safety_gate import SafetyGate


@pytest.fixture(scope="module")
def nlp():
    return spacy.load(ensure_model())


@pytest.fixture(scope="module")
def detector():
    return SafetyDetector()


def kind(nlp, detector, text):
    match = detector.read(nlp(text)).match
    return match.kind if match else None


@pytest.mark.parametrize(
    "text, keys",
    [
        ("I'm killing myself", ["i", "be", "kill", "myself"]),
        ("im gonna kms", ["i", "be", "go", "to", "kms"]),
        ("cant brethe", ["can", "not", "breathe"]),
        ("Years ago", ["year", "ago"]),
        ("dont want 2 b here", ["do", "not", "want", "to", "be", "here"]),
    ],
)
def test_tokens_reduce_to_lemma_keys_with_sms_spellings_and_typos(nlp, text, keys):
    assert [token_key(t) for t in nlp(text)] == keys


@pytest.mark.parametrize(
    "text",
    ["I want to die", "i wanna die", "Im going to kill myself tonight", "she says she's going to end her life",
     "I've been cutting myself again", "I don't want to wake up tomorrow", "thinkin bout sucide",
     "everyone would be better off without me", "I'm not okay. I want to die.",
     "I'm not joking, I'm going to kill myself"],
)
def test_crisis_phrasings(nlp, detector, text):
    assert kind(nlp, detector, text) == "crisis"


@pytest.mark.parametrize(
    "text",
    ["I can't breathe", "cnt breathe pls help", "my throat is closing up", "he's not breathing",
     "I took too many pills", "my wife collapsed", "crushing chest pain and short of breath",
     "her face is drooping", "the bleeding won't stop"],
)
def test_emergency_phrasings(nlp, detector, text):
    assert kind(nlp, detector, text) == "emergency"


def test_emergency_comes_before_crisis(nlp, detector):
    assert kind(nlp, detector, "I want to die, I took all my pills") == "emergency"


@pytest.mark.parametrize(
    "text",
    ["this pain is killing me", "I'd kill for a good night's sleep", "I'm dying to know if ketamine works",
     "my CRPS makes me want to scream", "kill me now, the pharmacy lost my script",
     "does ketamine help with suicidal thoughts?", "my chest hurts a bit after coughing",
     "my foot turns blue in the cold", "my CRPS is not responding to treatment"],
)
def test_idioms_and_questions_are_not_matched(nlp, detector, text):
    assert kind(nlp, detector, text) is None


@pytest.mark.parametrize(
    "text",
    ["I'm not suicidal, just tired", "I'd never hurt myself but today is awful",
     "no thoughts of self harm, just low", "I don't want to die, I want my life back"],
)
def test_a_denied_crisis_phrase_is_not_a_crisis_and_is_reported_as_denied(nlp, detector, text):
    reading = detector.read(nlp(text))
    assert reading.match is None and reading.denied == {"crisis"}


def test_a_denied_emergency_sign_is_reported_as_denied(nlp, detector):
    reading = detector.read(nlp("he's not unresponsive, he's awake and chatting"))
    assert reading.match is None and reading.denied == {"emergency"}


def test_negation_does_not_reach_across_a_clause(nlp, detector):
    assert kind(nlp, detector, "I'm not okay, I want to kill myself") == "crisis"
    assert kind(nlp, detector, "not sure why but i want to die") == "crisis"


def test_a_reported_question_is_not_a_statement(nlp, detector):
    assert kind(nlp, detector, "my GP asked if I ever had thoughts of harming myself. I haven't.") is None


def test_something_over_and_done_is_left_to_the_model(nlp, detector):
    reading = detector.read(nlp("my sister tried to kill herself years ago, she's doing well now"))
    assert reading.match is None and reading.resolved


def gate_decision(reading, model, threshold=0.3):
    return SafetyGate({"model_threshold": threshold}).decide(reading, model)


NOTHING = SafetyReading(match=None)


def test_gate_pattern_wins_with_certainty():
    reading = SafetyReading(SafetyMatch("crisis", "kill_self", "kill myself"))
    decision = gate_decision(reading, {"greet": 0.9})
    assert decision == {"kind": "crisis", "detected_by": "pattern", "rule": "kill_self", "confidence": 1.0}


def test_gate_model_catches_paraphrases_above_its_threshold():
    assert gate_decision(NOTHING, {"crisis": 0.51}, threshold=0.5)["detected_by"] == "model"
    assert gate_decision(NOTHING, {"crisis": 0.49, "emergency": 0.1}, threshold=0.5) is None


def test_gate_takes_the_more_likely_of_crisis_and_emergency():
    assert gate_decision(NOTHING, {"crisis": 0.35, "emergency": 0.6})["kind"] == "emergency"


def test_gate_denial_overrules_the_models_guess_of_that_kind_only():
    denied = SafetyReading(match=None, denied=frozenset({"crisis"}))
    assert gate_decision(denied, {"crisis": 0.9}) is None
    assert gate_decision(denied, {"emergency": 0.9})["kind"] == "emergency"


def rasa_message(nlp, text, ranking):
    from rasa.nlu.constants import SPACY_DOCS
    from rasa.shared.nlu.constants import TEXT
    from rasa.shared.nlu.training_data.message import Message

    message = Message(data={TEXT: text, "intent": dict(ranking[0]), "intent_ranking": ranking})
    message.set(SPACY_DOCS[TEXT], nlp(text))
    return message


def test_gate_component_overrides_a_fallback_and_records_its_reason(nlp):
    ranking = [{"name": "nlu_fallback", "confidence": 0.45}, {"name": "ketamine", "confidence": 0.4}]
    message = rasa_message(nlp, "i want to end my life", ranking)
    SafetyGate({"model_threshold": 0.3}).process([message])
    assert message.get("intent") == {"name": "crisis", "confidence": 1.0}
    assert message.get("intent_ranking")[0]["name"] == "crisis"
    assert message.get("safety") == {"kind": "crisis", "detected_by": "pattern", "rule": "end_life"}
    assert "safety" in message.as_dict(only_output_properties=True)


def test_gate_component_turns_an_unconfirmed_model_guess_into_a_fallback(nlp):
    ranking = [{"name": "emergency", "confidence": 0.46}, {"name": "symptoms", "confidence": 0.3}]
    message = rasa_message(nlp, "my hand feels weird and heavy", ranking)
    SafetyGate({"model_threshold": 0.5}).process([message])
    assert message.get("intent") == {"name": "nlu_fallback", "confidence": 0.46}
    assert message.get("safety") is None


def test_gate_component_turns_a_denied_model_crisis_into_distress(nlp):
    ranking = [{"name": "crisis", "confidence": 0.7}, {"name": "pain_distress", "confidence": 0.2}]
    message = rasa_message(nlp, "I'm not suicidal, just so tired", ranking)
    SafetyGate({"model_threshold": 0.3}).process([message])
    assert message.get("intent")["name"] == "pain_distress"
    assert message.get("safety") is None
