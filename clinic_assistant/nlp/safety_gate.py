"""Crisis and emergency messages win over every other reading of a message.

Runs after the classifiers and the fallbacks, before the policies. Two
layers decide together:

1. The deterministic patterns (``SafetyDetector`` over the spaCy doc). A
   standing match sets the intent to ``crisis`` or ``emergency`` with
   confidence 1.0, whatever DIET, the fallback or the response gate said.
2. The trained intents. When no pattern stands, DIET's confidence in
   ``crisis`` or ``emergency`` (read from the ranking, so even a guess the
   ``FallbackClassifier`` turned into ``nlu_fallback`` counts) of at least
   ``model_threshold`` makes the message a crisis or an emergency.

The gate is the only way to a safety intent: a model guess below the
threshold becomes ``nlu_fallback`` (a clarifying question), never a
crisis reply nobody decided on. An explicit denial ("I'm not suicidal, just
tired", "no chest pain") overrules the model's guess of that kind; a denied
crisis gets the compassionate ``pain_distress`` answer.

The decision is added to the parse as ``safety`` (kind, detected_by, rule)
so the flag recorded for staff says which layer caught the message.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.constants import SPACY_DOCS
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
    TEXT,
)
from rasa.shared.nlu.training_data.message import Message

from clinic_assistant.nlp.safety_detector import SafetyDetector, SafetyReading
from clinic_assistant.nlp.safety_patterns import CRISIS, EMERGENCY

SAFETY = "safety"
DISTRESS = "pain_distress"
SAFETY_INTENTS = (EMERGENCY, CRISIS)


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False
)
class SafetyGate(GraphComponent, IntentClassifier):
    """Sets ``crisis`` / ``emergency`` from the patterns or the trained model."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {"model_threshold": 0.5}

    def __init__(self, config: Dict[str, Any], detector: Optional[SafetyDetector] = None) -> None:
        self.model_threshold = float(config["model_threshold"])
        self.detector = detector or SafetyDetector()

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> SafetyGate:
        return cls(config)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            doc = message.get(SPACY_DOCS[TEXT])
            if doc is None:
                continue
            reading = self.detector.read(doc)
            decision = self.decide(reading, model_confidences(message.data))
            if decision:
                _set_intent(message, decision["kind"], decision.pop("confidence"))
                message.set(SAFETY, decision, add_to_output=True)
            elif _intent(message) == CRISIS and CRISIS in reading.denied:
                _set_intent(message, DISTRESS, 1.0)
            elif _intent(message) in SAFETY_INTENTS:
                confidence = (message.get(INTENT) or {}).get(PREDICTED_CONFIDENCE_KEY, 0.0)
                _set_intent(message, DEFAULT_NLU_FALLBACK_INTENT_NAME, confidence)
        return messages

    def decide(self, reading: SafetyReading, model: Dict[str, float]) -> Optional[Dict[str, Any]]:
        """The safety reading of one message, or None when it is neither."""
        if reading.match:
            return {"kind": reading.match.kind, "detected_by": "pattern",
                    "rule": reading.match.rule, "confidence": 1.0}
        candidates = [(model.get(kind, 0.0), kind) for kind in SAFETY_INTENTS if kind not in reading.denied]
        if not candidates:
            return None
        confidence, kind = max(candidates)
        if confidence < self.model_threshold:
            return None
        return {"kind": kind, "detected_by": "model", "rule": None, "confidence": confidence}


def model_confidences(parse: Dict[str, Any]) -> Dict[str, float]:
    """The classifier's confidence per intent, fallbacks left out."""
    return {
        item[INTENT_NAME_KEY]: float(item[PREDICTED_CONFIDENCE_KEY])
        for item in parse.get(INTENT_RANKING_KEY) or []
        if item.get(INTENT_NAME_KEY) != DEFAULT_NLU_FALLBACK_INTENT_NAME
    }


def _intent(message: Message) -> Optional[str]:
    return (message.get(INTENT) or {}).get(INTENT_NAME_KEY)


def _set_intent(message: Message, name: str, confidence: float) -> None:
    intent = {INTENT_NAME_KEY: name, PREDICTED_CONFIDENCE_KEY: confidence}
    ranking = [i for i in message.get(INTENT_RANKING_KEY) or [] if i.get(INTENT_NAME_KEY) != name]
    message.set(INTENT, intent, add_to_output=True)
    message.set(INTENT_RANKING_KEY, [dict(intent)] + ranking, add_to_output=True)
