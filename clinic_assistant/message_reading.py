"""How the NLU reads a message: long messages passage by passage, pathological runs in pieces.

The pipeline's cost grows faster than a message's length (spaCy's tokenizer with the square of a word's length,
the matchers and featurizers with the number of words), and parts of it hold the interpreter, so one long message
would stall the Rasa server's other conversations. So:

- a run of more than ``LONGEST_WORD`` characters without a space (no word is that long) is read in pieces;
- a message of more than ``MAX_PASSAGE_WORDS`` words is read as passages of whole sentences (a sentence longer
  than that is cut), each parsed on its own and the readings combined: a safety finding in any passage counts
  (a risk told in the middle of a story), and the answer comes from the passage that asks something.

The stored message keeps its text as written; only what the NLU reads is cut.
"""

import re
from typing import Any, Dict, List

LONGEST_WORD = 40
MAX_PASSAGE_WORDS = 60

_LONG_RUN = re.compile(rf"\S{{{LONGEST_WORD + 1},}}")
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")
_QUESTION_START = re.compile(
    r"^(what|whats|what's|how|why|when|where|who|which|is|are|can|could|does|do|did|will|would|should|has|have|"
    r"any|anyone|wat|wht)\b",
    re.IGNORECASE,
)
# The safety layer's findings, most urgent first: the reading with the most urgent one wins.
URGENCY = ("emergency", "crisis")


def in_pieces(text: str) -> str:
    """``text`` with every run of more than ``LONGEST_WORD`` characters without a space cut into pieces."""
    return _LONG_RUN.sub(lambda run: " ".join(_chunks(run.group(), LONGEST_WORD)), text)


def passages(text: str, max_words: int = MAX_PASSAGE_WORDS) -> List[str]:
    """``text`` as one passage if it is short, else as passages of whole sentences of at most ``max_words``."""
    words = text.split()
    if len(words) <= max_words:
        return [text]
    found: List[str] = []
    current: List[str] = []
    for sentence in _SENTENCE_END.split(text):
        for part in _chunks(sentence.split(), max_words):
            if current and len(current) + len(part) > max_words:
                found.append(" ".join(current))
                current = []
            current.extend(part)
    if current:
        found.append(" ".join(current))
    return found


def combine(readings: List[Dict[str, Any]]) -> Dict[str, Any]:
    """One parse from the parses of a message's passages (in order)."""
    if len(readings) == 1:
        return readings[0]
    urgent = [r for r in readings if (r.get("safety") or {}).get("kind") in URGENCY]
    if urgent:
        return min(urgent, key=lambda r: URGENCY.index(r["safety"]["kind"]))
    asking = [r for r in readings if asks(r.get("text", ""))] or readings
    return max(asking, key=lambda r: (r.get("intent") or {}).get("confidence") or 0.0)


def asks(passage: str) -> bool:
    """Whether a passage asks something: a question mark, or a sentence that opens like a question."""
    return "?" in passage or any(_QUESTION_START.match(s.strip()) for s in _SENTENCE_END.split(passage))


def _chunks(items: Any, size: int) -> List[Any]:
    return [items[i:i + size] for i in range(0, len(items), size)] or [items[:0]]
