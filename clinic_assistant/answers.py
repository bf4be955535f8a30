"""The catalogue of grounded answers, read from ``data/responses``.

Rasa owns the answer texts (responses of retrieval intents); this module
reads their metadata: the article sections each answer comes from, a short
title for suggestions, the canonical question a suggestion button sends,
and the answer a "want to know more?" leads to.
"""

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Dict, List, Optional

import yaml

from clinic_assistant import settings


@dataclass(frozen=True)
class Answer:
    response: str  # e.g. "utter_crps/type_1"
    text: str
    title: str
    question: str
    sections: List[str] = field(default_factory=list)
    more: Optional[str] = None  # what a "yes" gives: a response name ("utter_crps/causes") or CONSULTATION_FORM

    @property
    def key(self) -> str:
        """The retrieval intent and response key, e.g. ``crps/type_1``."""
        return self.response[len("utter_"):]


# ``more: consultation`` in an answer's metadata: a "yes" starts a consultation request.
CONSULTATION_OFFER = "consultation"
CONSULTATION_FORM = "consultation_form"


def response_name(key: str) -> str:
    return f"utter_{key}"


def offered_action(more: Optional[str]) -> Optional[str]:
    """The action a "yes" runs for an answer's ``more`` metadata, if any."""
    if not more:
        return None
    if more == CONSULTATION_OFFER:
        return CONSULTATION_FORM
    return more if more.startswith("utter_") else response_name(more)


@cache
def load_answers(directory: Path = settings.RESPONSES_DIR) -> Dict[str, Answer]:
    """All answers by response name, from every YAML file in ``directory``."""
    answers: Dict[str, Answer] = {}
    for path in sorted(directory.glob("*.yml")):
        for name, variants in (yaml.safe_load(path.read_text()).get("responses") or {}).items():
            answers[name] = _answer(name, variants[0])
    return answers


def _answer(name: str, variant: dict) -> Answer:
    meta = variant.get("metadata") or {}
    return Answer(
        response=name,
        text=variant.get("text", ""),
        title=meta.get("title", ""),
        question=meta.get("question", ""),
        sections=list(meta.get("sections") or []),
        more=offered_action(meta.get("more")),
    )
