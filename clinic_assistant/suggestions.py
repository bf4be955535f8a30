"""Which answers to suggest when the assistant is unsure what was asked."""

from typing import Any, Dict, List

from clinic_assistant.answers import Answer

# Below this, a candidate is noise rather than a plausible reading.
MIN_CANDIDATE_CONFIDENCE = 0.1
MAX_SUGGESTIONS = 3


def suggested_answers(parse: Dict[str, Any], answers: Dict[str, Answer]) -> List[Answer]:
    """Up to three answers the message most plausibly asked for, best first.

    Candidates come from the response selector's ranking; only answers with a
    canonical question are offered, since a suggestion button sends it.
    """
    selector = parse.get("response_selector") or {}
    if _classified_intent(parse) not in selector.get("all_retrieval_intents", []):
        return []  # not an article question at all: nothing plausible to offer
    ranking = (selector.get("default") or {}).get("ranking") or []
    suggestions: List[Answer] = []
    for candidate in ranking:
        if candidate.get("confidence", 0.0) < MIN_CANDIDATE_CONFIDENCE:
            break
        answer = answers.get(f"utter_{candidate.get('intent_response_key')}")
        if answer and answer.question and answer not in suggestions:
            suggestions.append(answer)
        if len(suggestions) == MAX_SUGGESTIONS:
            break
    return suggestions


def _classified_intent(parse: Dict[str, Any]) -> str:
    """The classifier's best intent, looking past an ``nlu_fallback`` on top."""
    for candidate in parse.get("intent_ranking") or []:
        if candidate.get("name") != "nlu_fallback":
            return candidate.get("name", "")
    return ""
