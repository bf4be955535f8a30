"""Fall back when the response selector is unsure, not only the intent.

Rasa's ``FallbackClassifier`` checks the intent's confidence alone: a message
confidently classified as "a ketamine question" but with no clear answer
would still get the selector's best guess, i.e. possibly a wrong medical
answer. This component predicts ``nlu_fallback`` in that case, in the same
shape the ``FallbackClassifier`` uses, so rules and ``rasa test`` treat both
the same way (the rejected prediction stays second in the ranking).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.shared.constants import DEFAULT_NLU_FALLBACK_INTENT_NAME
from rasa.shared.nlu.constants import (
    INTENT,
    INTENT_NAME_KEY,
    INTENT_RANKING_KEY,
    PREDICTED_CONFIDENCE_KEY,
)
from rasa.shared.nlu.training_data.message import Message

from clinic_assistant.nlp.selection import selected_answer


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=False
)
class ResponseConfidenceGate(GraphComponent, IntentClassifier):
    """Predicts ``nlu_fallback`` when the selected answer's confidence is low."""

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return {"threshold": 0.35}

    def __init__(self, config: Dict[str, Any]) -> None:
        self.threshold = float(config["threshold"])

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> ResponseConfidenceGate:
        return cls(config)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            confidence = selected_response_confidence(message.data)
            if confidence is not None and confidence < self.threshold:
                fallback = {
                    INTENT_NAME_KEY: DEFAULT_NLU_FALLBACK_INTENT_NAME,
                    PREDICTED_CONFIDENCE_KEY: self.threshold,
                }
                message.data[INTENT] = fallback
                message.data.setdefault(INTENT_RANKING_KEY, []).insert(0, dict(fallback))
        return messages


def selected_response_confidence(parse: Dict[str, Any]) -> Optional[float]:
    """Confidence of the answer chosen for the message's retrieval intent,
    or None when the message has no retrieval intent (or already fell back)."""
    confidence = (selected_answer(parse) or {}).get("confidence")
    return None if confidence is None else float(confidence)
