"""Deterministic crisis and emergency detection over a spaCy doc.

Every token is reduced to a key (its lemma, with contractions, SMS spellings
and common typos normalised) and spaCy's ``Matcher`` runs the patterns of
``safety_patterns`` over those keys. A match is set aside when

- a negation comes shortly before it in the same clause ("I'm not suicidal",
  "I'd never hurt myself", "no chest pain"): the message then counts as a
  *denial* of that kind, which also overrules the trained model's guess;
- the message says the event is over ("years ago", "she's fine now"): the
  trained model decides those.

The result is what a person would need now: emergency before crisis, since
an overdose or a closing throat needs 911 first whatever led to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import FrozenSet, List, Optional, Sequence, Set

from spacy.lookups import Table, load_lookups
from spacy.matcher import Matcher
from spacy.tokens import Doc, Token
from spacy.vocab import Vocab

from clinic_assistant.nlp.safety_patterns import (
    CLAUSE_BREAK_KEYS,
    CRISIS,
    DENIAL,
    EMERGENCY,
    EMERGENCY_DENIAL,
    EMERGENCY_SIGN,
    KEY_SPELLINGS,
    NEGATION_KEYS,
    NEGATION_WINDOW,
    PATTERNS,
    REPORTED_QUESTION_KEYS,
    RESOLVED_PHRASES,
    SafetyPattern,
)


@dataclass(frozen=True)
class SafetyMatch:
    kind: str  # "crisis" or "emergency"
    rule: str  # the pattern's name, for the record and for tests
    text: str  # the words that matched


@dataclass(frozen=True)
class SafetyReading:
    """What the patterns say about one message."""

    match: Optional[SafetyMatch]  # the most urgent match that stands
    denied: FrozenSet[str] = frozenset()  # kinds explicitly negated ("I'm not suicidal", "no chest pain")
    resolved: bool = False  # matches were set aside as past and over


@lru_cache(maxsize=1)
def _lemmas() -> Table:
    # The lookup table the pipeline's lemmatizer uses, read case-insensitively
    # here ("Years" -> "year"), which the lemmatizer itself does not do.
    return load_lookups("en", ["lemma_lookup"]).get_table("lemma_lookup")


def token_key(token: Token) -> str:
    """The normalised form patterns are written in."""
    text = token.lower_
    if len(text) == 4 and text[:2] in ("19", "20") and text.isdigit():
        return "YEAR"
    if text in KEY_SPELLINGS:
        return KEY_SPELLINGS[text]
    norm = token.norm_.lower()
    if norm in KEY_SPELLINGS:
        return KEY_SPELLINGS[norm]
    lemma = _lemmas().get(norm, norm)
    return KEY_SPELLINGS.get(lemma, lemma)


def _slot_spec(slot: str) -> dict:
    optional = slot.startswith("?")
    slot = slot.lstrip("?")
    spec: dict = {} if slot == "*" else {"ORTH": {"IN": slot.split("|")}}
    if optional or slot == "*":
        spec["OP"] = "?"
    return spec


def compile_pattern(pattern: SafetyPattern) -> List[dict]:
    return [_slot_spec(slot) for slot in pattern.slots.split()]


class SafetyDetector:
    """Finds crisis and emergency phrasings in spaCy docs."""

    def __init__(self, patterns: Sequence[SafetyPattern] = PATTERNS) -> None:
        self.vocab = Vocab()
        self.matcher = Matcher(self.vocab)
        self.patterns = {p.name: p for p in patterns}
        for pattern in patterns:
            self.matcher.add(pattern.name, [compile_pattern(pattern)])
        _lemmas()  # loaded with the model, not while the first visitor waits (it holds the interpreter)

    def read(self, doc: Doc) -> SafetyReading:
        keys = [token_key(token) for token in doc]
        breaks = [t.is_punct or keys[i] in CLAUSE_BREAK_KEYS for i, t in enumerate(doc)]
        resolved = _mentions_resolution(keys)
        standing: List[SafetyMatch] = []
        denied: Set[str] = set()
        set_aside = False
        for pattern, start, end in self._matches(keys):
            if pattern.kind in (DENIAL, EMERGENCY_DENIAL):
                denied.add(CRISIS if pattern.kind == DENIAL else EMERGENCY)
                continue
            if pattern.negatable and _negated(keys, breaks, start):
                if pattern.kind != EMERGENCY_SIGN:  # "no chest pain" does not deny breathlessness
                    denied.add(pattern.kind)
                continue
            if _reported_question(keys, breaks, start):
                continue
            if resolved:
                set_aside = True
                continue
            standing.append(SafetyMatch(pattern.kind, pattern.name, doc[start:end].text))
        return SafetyReading(_most_urgent(standing), frozenset(denied), set_aside)

    def _matches(self, keys: List[str]):
        key_doc = Doc(self.vocab, words=keys or [""])
        for match_id, start, end in self.matcher(key_doc):
            pattern = self.patterns[self.vocab.strings[match_id]]
            if pattern.unless_next and end < len(keys) and keys[end] == pattern.unless_next:
                continue
            yield pattern, start, end


def _negated(keys: List[str], breaks: List[bool], start: int) -> bool:
    for i in range(start - 1, max(start - 1 - NEGATION_WINDOW, -1), -1):
        if breaks[i]:
            return False
        if keys[i] in NEGATION_KEYS:
            return True
    return False


def _reported_question(keys: List[str], breaks: List[bool], start: int) -> bool:
    """Whether the match sits in "... asked (me) if/whether ..." of its clause."""
    for i in range(start - 1, 0, -1):
        if breaks[i]:
            return False
        if keys[i] in ("if", "whether") and (keys[i - 1] in REPORTED_QUESTION_KEYS or keys[i - 2 : i - 1] == ["ask"]):
            return True
    return False


def _mentions_resolution(keys: List[str]) -> bool:
    text = f" {' '.join(keys)} "
    return any(f" {phrase} " in text for phrase in RESOLVED_PHRASES)


def _most_urgent(matches: List[SafetyMatch]) -> Optional[SafetyMatch]:
    for match in matches:
        if match.kind == EMERGENCY:
            return match
    signs = [m for m in matches if m.kind == EMERGENCY_SIGN]
    if len({m.rule for m in signs}) >= 2:
        return SafetyMatch(EMERGENCY, "+".join(sorted({m.rule for m in signs})), " / ".join(m.text for m in signs))
    for match in matches:
        if match.kind == CRISIS:
            return match
    return None
