"""The answer the response selector chose for a parsed message."""

from typing import Any, Dict, Optional

from rasa.shared.nlu.constants import INTENT, INTENT_NAME_KEY

RESPONSE_SELECTOR = "response_selector"


def selected_answer(parse: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The selector's prediction for the message's retrieval intent (``confidence``,
    ``responses``, ``utter_action``...), or None when the message has no
    retrieval intent, e.g. a greeting or an ``nlu_fallback``.

    Rasa uses the selector named after the intent, else the default one.
    """
    intent = (parse.get(INTENT) or {}).get(INTENT_NAME_KEY)
    selector = parse.get(RESPONSE_SELECTOR) or {}
    if intent not in selector.get("all_retrieval_intents", []):
        return None
    return (selector.get(intent) or selector.get("default") or {}).get("response") or {}
