"""The spaCy pipeline built from code and the custom NLU components."""

import pytest
import spacy
from rasa.nlu.constants import SPACY_DOCS, TOKENS_NAMES
from rasa.nlu.tokenizers.spacy_tokenizer import SpacyTokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message

from clinic_assistant.nlp.build_model import build_pipeline, ensure_model
from clinic_assistant.nlp.follow_up_offer import FollowUpOffer
from clinic_assistant.nlp.response_gate import ResponseConfidenceGate
from clinic_assistant.nlp.term_featurizer import FEATURE_INDEX, TermFeaturizer


@pytest.fixture(scope="module")
def nlp():
    return spacy.load(ensure_model())


def test_saved_pipeline_is_blank_english_with_lemmatizer_and_ruler(nlp):
    assert nlp.lang == "en"
    assert nlp.pipe_names == ["lemmatizer", "entity_ruler"]


@pytest.mark.parametrize(
    "text, lemmas", [("symptoms treated", ["symptom", "treat"]), ("feet were swollen", ["foot", "be", "swell"])]
)
def test_lookup_lemmas(nlp, text, lemmas):
    assert [t.lemma_ for t in nlp(text)] == lemmas


@pytest.mark.parametrize(
    "text, label, entity_id",
    [
        ("what is RSD", "CRPS_TYPE", "type_1"),
        ("tell me about reflex sympathetic dystrophy", "CRPS_TYPE", "type_1"),
        ("and type two?", "CRPS_TYPE", "type_2"),
        ("wat is crps typ 1", "CRPS_TYPE", "type_1"),
        ("tipe II pls", "CRPS_TYPE", "type_2"),
        ("causalgia", "CRPS_TYPE", "type_2"),
        ("is GABAPENTIN used", "TREATMENT", "gabapentin"),
        ("Complex Regional Pain Syndrome", "CONDITION", "crps"),
        ("my fingers swelled up", "SYMPTOM", "swelling"),
        ("spinal cord stimulators", "TREATMENT", "spinal_cord_stimulator"),
    ],
)
def test_entity_ruler_normalises_the_articles_terms(nlp, text, label, entity_id):
    assert (label, entity_id) in [(e.label_, e.ent_id_) for e in nlp(text).ents]


def test_no_entities_in_unrelated_text(nlp):
    assert list(nlp("what's the weather in Paris tomorrow").ents) == []


def test_a_fresh_build_matches_the_saved_one(nlp):
    fresh = build_pipeline()
    text = "is rsd the same as causalgia"
    assert [(e.text, e.ent_id_) for e in fresh(text).ents] == [(e.text, e.ent_id_) for e in nlp(text).ents]


def _message(nlp, text: str) -> Message:
    message = Message({TEXT: text, SPACY_DOCS[TEXT]: nlp(text)})
    SpacyTokenizer(SpacyTokenizer.get_default_config()).process([message])
    return message


def test_term_featurizer_marks_synonyms_alike(nlp):
    featurizer = TermFeaturizer("terms", TermFeaturizer.get_default_config())
    rsd, type_one = _message(nlp, "what is RSD"), _message(nlp, "what is type one")
    featurizer.process([rsd, type_one])
    column = FEATURE_INDEX["CRPS_TYPE:type_1"]
    for message in (rsd, type_one):
        sequence, sentence = message.get_sparse_features(TEXT)
        assert sentence.features.toarray()[0, column] == 1
        assert sequence.features.shape[0] == len(message.get(TOKENS_NAMES[TEXT]))


def test_term_featurizer_leaves_plain_text_without_term_features(nlp):
    message = _message(nlp, "hello there")
    TermFeaturizer("terms", TermFeaturizer.get_default_config()).process([message])
    _, sentence = message.get_sparse_features(TEXT)
    assert sentence.features.nnz == 0


def _parse(intent: str, answer_confidence: float) -> Message:
    return Message(
        {
            TEXT: "q",
            "intent": {"name": intent, "confidence": 0.9},
            "intent_ranking": [{"name": intent, "confidence": 0.9}],
            "response_selector": {
                "all_retrieval_intents": ["crps"],
                "default": {"response": {"confidence": answer_confidence, "utter_action": "utter_crps/types"}},
            },
        }
    )


def test_gate_falls_back_when_the_answer_is_uncertain():
    message = _parse("crps", 0.2)
    ResponseConfidenceGate({"threshold": 0.35}).process([message])
    assert message.get("intent")["name"] == "nlu_fallback"
    assert [i["name"] for i in message.get("intent_ranking")] == ["nlu_fallback", "crps"]


def test_gate_keeps_a_confident_answer():
    message = _parse("crps", 0.8)
    ResponseConfidenceGate({"threshold": 0.35}).process([message])
    assert message.get("intent")["name"] == "crps"


def test_gate_ignores_intents_without_answers():
    message = _parse("greet", 0.01)
    ResponseConfidenceGate({"threshold": 0.35}).process([message])
    assert message.get("intent")["name"] == "greet"


def _answer_parse(intent: str, key: str, more: "str | None") -> Message:
    metadata = {"more": more} if more else {}
    prediction = {"response": {"utter_action": f"utter_{key}", "responses": [{"text": "t", "metadata": metadata}]}}
    return Message(
        {
            TEXT: "q",
            "intent": {"name": intent, "confidence": 0.9},
            "response_selector": {"all_retrieval_intents": ["crps", "ketamine"], "default": prediction},
        }
    )


def _offer(message: Message) -> dict:
    return {e["entity"]: e["value"] for e in message.get("entities", []) if e["extractor"] == "FollowUpOffer"}


def test_an_answer_that_offers_more_names_the_offered_answer():
    message = _answer_parse("ketamine", "ketamine/evidence", "ketamine/vs_opioids")
    FollowUpOffer().process([message])
    assert _offer(message) == {"more_offered": "true", "more_response": "utter_ketamine/vs_opioids"}


def test_an_answer_without_more_withdraws_the_offer():
    message = _answer_parse("crps", "crps/type_2", None)
    FollowUpOffer().process([message])
    assert _offer(message) == {"more_offered": "false"}


def test_other_messages_withdraw_the_offer_but_yes_keeps_it():
    greeting, yes = _answer_parse("greet", "crps/what_is", "crps/causes"), _answer_parse("affirm", "crps/what_is", None)
    FollowUpOffer().process([greeting, yes])
    assert _offer(greeting) == {"more_offered": "false"}
    assert _offer(yes) == {}
