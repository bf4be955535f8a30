"""Remember, in the parse itself, which answer a reply offers next.

Answers that end with "Want to know more?" name the answer a "yes" leads to
(``metadata.more`` in data/responses, which the response selector returns
with its prediction). This component turns that into two entities, which
fill the ``more_offered`` and ``more_response`` slots, so offering more costs
no round trip to the action server on every answer. A "yes" (``affirm``)
leaves the offer in place for ``action_tell_more``; any other message
replaces or withdraws it.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.shared.nlu.constants import ENTITIES, INTENT, INTENT_NAME_KEY
from rasa.shared.nlu.training_data.message import Message

from clinic_assistant.answers import offered_action
from clinic_assistant.nlp.selection import selected_answer

AFFIRM = "affirm"
EXTRACTOR = "FollowUpOffer"


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False
)
class FollowUpOffer(GraphComponent):
    """Adds ``more_offered`` / ``more_response`` entities to every parse but a "yes"."""

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> FollowUpOffer:
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            if (message.get(INTENT) or {}).get(INTENT_NAME_KEY) == AFFIRM:
                continue
            more = offered_response(message.data)
            entities = [_entity("more_offered", "true" if more else "false")]
            if more:
                entities.append(_entity("more_response", more))
            message.set(ENTITIES, message.get(ENTITIES, []) + entities, add_to_output=True)
        return messages


def _entity(name: str, value: str) -> Dict[str, Any]:
    return {"entity": name, "value": value, "start": 0, "end": 0, "extractor": EXTRACTOR}


def offered_response(parse: Dict[str, Any]) -> Optional[str]:
    """What the selected answer offers next, if any: a response name or the consultation form."""
    variants = (selected_answer(parse) or {}).get("responses") or [{}]
    return offered_action((variants[0].get("metadata") or {}).get("more"))
