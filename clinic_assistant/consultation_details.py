"""What a consultation request's answers must look like, and how to find them in a message.

Shared by the form's validation action and its tests; no Rasa here, only the
rules: a name staff can use, a phone number in E.164, an optional e-mail,
free text of a sensible size, and the read-back summary.
"""

import re
from typing import Any, Dict, Mapping, Optional

from clinic_assistant.contact import find_email, find_phone, parse_email, parse_phone

MAX_NAME = 200
MAX_TEXT = 2000
CONSULT_SLOTS = (
    "consult_name", "consult_phone", "consult_email", "consult_help_with", "consult_best_times",
    "consult_consent", "consult_consent_at", "consult_confirmed", "consult_summary", "consult_failures",
)
# Messages that are not an answer to the form's question.
INTERRUPTIONS = {"crisis", "emergency", "cancel", "human_handoff", "bot_challenge"}
ARTICLE_QUESTIONS = {"crps", "symptoms", "treatment", "ketamine", "clinic", "limits"}
_QUESTION_START = re.compile(r"^\s*(what|whats|what's|how|why|when|is|are|can|could|does|do|will|should|wait)\b", re.I)
_NO = {"no", "none", "skip", "nope", "no thanks", "no thank you", "n", "nah", "i don't have one", "dont have one"}

# "my name is Maria", and with a capital "I'm Maria" / "this is Maria Lopez"
# ("I'm worried", "this is urgent" are no names).
_NAME_SAID = re.compile(
    r"\b(?:[Mm]y name is|[Mm]y name's|[Nn]ame is)\s+([A-Za-z][A-Za-z'\-]+(?:\s+[A-Za-z][A-Za-z'\-]+){0,2})"
    r"|\b(?:I'm|I am|Im|im|i'm|i am|[Tt]his is)\s+([A-Z][a-zA-Z'\-]+(?:\s+[A-Z][a-zA-Z'\-]+){0,2})"
)
_NOT_NAMES = {"back", "later", "tomorrow", "now", "please", "pls", "asap", "anytime", "about", "the", "a", "on", "at"}


def name_in(text: str) -> Optional[str]:
    """A name the visitor gave in passing ("I'm Maria, my number is ...")."""
    for match in _NAME_SAID.finditer(text):
        said = match.group(1) or match.group(2)
        words = [w for w in said.split() if w.lower() not in ("and", "my", "i", "im")]
        if words and words[0].lower() not in _NOT_NAMES:
            return " ".join(words)
    return None


def _intent(parse: Mapping[str, Any]) -> str:
    return ((parse.get("intent") or {}).get("name")) or ""


def said_no(parse: Mapping[str, Any]) -> bool:
    text = (parse.get("text") or "").strip().lower().rstrip(".!")
    return _intent(parse) == "deny" or text in _NO


def said_yes(parse: Mapping[str, Any]) -> bool:
    return _intent(parse) == "affirm"


def answers_the_question(parse: Mapping[str, Any]) -> bool:
    """False for a crisis, "cancel", "a person please", or a question about the article."""
    intent = _intent(parse)
    text = parse.get("text") or ""
    if intent == "human_handoff" and any(c.isdigit() for c in text):
        return True  # "call me on 850..." when asked for a number is the number, not a request for a person
    if intent in INTERRUPTIONS:
        return False
    return not (intent in ARTICLE_QUESTIONS and (text.rstrip().endswith("?") or _QUESTION_START.match(text)))


def valid_name(value: Any) -> Optional[str]:
    name = " ".join(str(value or "").split())
    if not 0 < len(name) <= MAX_NAME or not any(c.isalpha() for c in name):
        return None
    if find_phone(name) or find_email(name):
        return None
    return name


def valid_phone(value: Any) -> Optional[str]:
    text = str(value or "").strip()
    return parse_phone(text) or find_phone(text) if text else None


def valid_email(value: Any) -> Optional[str]:
    text = str(value or "").strip()
    return parse_email(text) if text and " " not in text else None


def _short(text: Any, limit: int) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def summary(slots: Dict[str, Any]) -> str:
    """The read-back before sending, short enough for a text message."""
    email = slots.get("consult_email")
    consent = slots.get("consult_consent")
    parts = [
        _short(slots.get("consult_name"), 30),
        slots.get("consult_phone") or "no phone yet",
        "no email" if email in (None, "none") else _short(email, 40),
        f"about: {_short(slots.get('consult_help_with'), 50)}",
        f"best times: {_short(slots.get('consult_best_times'), 30)}",
        f"calls and texts: {'yes' if consent else 'no' if consent is False else '?'}",
    ]
    return "; ".join(parts) + "."
