"""Sparse features from the entity ruler's canonical term ids.

"RSD", "reflex sympathetic dystrophy" and "type one" look nothing alike to a
bag of words or characters, but the entity ruler gives all three the id
``type_1``. Feeding those ids to DIET and the response selector lets a
synonym seen once in training stand for all its spellings.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import SPACY_DOCS, TOKENS_NAMES
from rasa.nlu.featurizers.sparse_featurizer.sparse_featurizer import SparseFeaturizer
from rasa.nlu.tokenizers.spacy_tokenizer import SpacyTokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from clinic_assistant.nlp.terms import TERMS

# A fixed vocabulary: one column per entity label and one per canonical id.
FEATURE_NAMES: List[str] = sorted(
    {label for label in TERMS}
    | {f"{label}:{entity_id}" for label, entries in TERMS.items() for entity_id in entries}
)
FEATURE_INDEX: Dict[str, int] = {name: i for i, name in enumerate(FEATURE_NAMES)}


@DefaultV1Recipe.register(
    DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=False
)
class TermFeaturizer(SparseFeaturizer, GraphComponent):
    """Marks each token that belongs to one of the article's terms."""

    @classmethod
    def required_components(cls) -> List[type]:
        return [SpacyTokenizer]

    @staticmethod
    def get_default_config() -> Dict[str, Any]:
        return SparseFeaturizer.get_default_config()

    @classmethod
    def validate_config(cls, config: Dict[str, Any]) -> None:
        """No options to validate."""

    @classmethod
    def create(
        cls,
        config: Dict[str, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> TermFeaturizer:
        return cls(execution_context.node_name, config)

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            self._featurize(message)
        return messages

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data

    def _featurize(self, message: Message) -> None:
        tokens = message.get(TOKENS_NAMES[TEXT])
        doc = message.get(SPACY_DOCS[TEXT])
        if not tokens or doc is None:
            return
        sequence = scipy.sparse.lil_matrix((len(tokens), len(FEATURE_NAMES)))
        for ent in doc.ents:
            columns = term_columns(ent.label_, ent.ent_id_)
            for row, token in enumerate(tokens):
                if token.start >= ent.start_char and token.end <= ent.end_char:
                    sequence[row, columns] = 1.0
        sequence = sequence.tocsr()
        sentence = scipy.sparse.csr_matrix(sequence.max(axis=0))
        self.add_features_to_message(
            sequence=sequence.tocoo(), sentence=sentence.tocoo(), attribute=TEXT, message=message
        )


def term_columns(label: str, entity_id: Optional[str]) -> List[int]:
    """Feature columns for one entity: its label and, when known, its id."""
    names = [label, f"{label}:{entity_id}"]
    return [FEATURE_INDEX[name] for name in names if name in FEATURE_INDEX]
