"""Teaching the assistant: reviewers correct the intent of patient messages; the corrections become NLU data.

The export is meant for the repository's data/: phone numbers, e-mail addresses and the patients' names are
replaced by placeholders there (``review.corrections_yaml``), and the page and the file say so.
"""

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import yaml
from aiohttp import web

from clinic_assistant import settings
from clinic_assistant.console import keys, masking
from clinic_assistant.console.masking import mask_contacts
from clinic_assistant.console.views.common import (
    actor,
    audited,
    bad_request,
    call,
    clinic,
    conversation_path,
    page,
    record_id,
    see_other,
    tracker,
)
from clinic_assistant.store import review

DOMAIN_PATH = settings.PROJECT_DIR / "domain.yml"


@dataclass(frozen=True)
class CorrectionChoices:
    """What a message can be corrected to: an intent of the domain, or a retrieval intent's response key."""

    intents: List[str]  # the intents answered without the response selector
    responses: Dict[str, List[str]]  # retrieval intent -> its response keys, such as "symptoms/overview"

    def parse(self, choice: str) -> Tuple[str, Optional[str]]:
        """(intent, response key or None) of a choice from the form; ValueError if it isn't one offered."""
        intent, _, _ = choice.partition("/")
        if choice in self.intents or choice in self.responses.get(intent, ()):
            return intent, choice if "/" in choice else None
        raise ValueError(f"{choice!r} is not an intent or response of the assistant")


@cache
def correction_choices(
    domain_path: Path = DOMAIN_PATH, responses_dir: Path = settings.RESPONSES_DIR
) -> CorrectionChoices:
    """The choices, from ``domain.yml``'s intents and the response keys in ``data/responses`` (read once per
    process: both change only with a new release of the assistant)."""
    domain = yaml.safe_load(domain_path.read_text())
    names = [next(iter(item)) if isinstance(item, dict) else str(item) for item in domain.get("intents", [])]
    responses: Dict[str, List[str]] = {}
    for path in sorted(responses_dir.glob("*.yml")):
        for key in (yaml.safe_load(path.read_text()) or {}).get("responses", {}):
            intent, slash, _ = key.removeprefix("utter_").partition("/")
            if slash:
                responses.setdefault(intent, []).append(key.removeprefix("utter_"))
    return CorrectionChoices(
        intents=[name for name in names if name not in responses],
        responses={intent: sorted(keys) for intent, keys in responses.items()},
    )


async def correct(request: web.Request) -> web.Response:
    """Record the right intent of one patient message; its text is taken from the tracker, not from the form."""
    conversation_id = request.match_info["id"]
    event_id = record_id(request.match_info["event_id"])
    if event_id is None:
        raise web.HTTPNotFound(text="No such patient message in this conversation.")
    try:
        intent, response = correction_choices().parse(str((await request.post()).get("intent", "")))
    except ValueError as problem:
        raise bad_request("Choose one of the assistant's intents or responses.") from problem
    try:
        found = await call(review.transcript, tracker(request), clinic(request), conversation_id)
    except review.ConversationNotFound as missing:
        raise web.HTTPNotFound(text="No such conversation.") from missing
    turn = next((t for t in found.turns if t.event_id == event_id and t.speaker == "patient"), None)
    if turn is None:
        raise web.HTTPNotFound(text="No such patient message in this conversation.")
    arguments = (clinic(request), conversation_id, event_id, turn.text, intent, response, actor(request))
    try:
        await call(review.add_correction, *arguments)
    except ValueError as problem:  # a message without text: nothing to teach
        raise bad_request(str(problem)) from problem
    raise see_other(conversation_path(conversation_id), "corrected", f"turn-{event_id}")


def _listed(corrections: List[review.Correction], names: Dict[str, List[str]]) -> List[dict]:
    return [{"correction": c, "text": mask_contacts(c.text, names.get(c.conversation_id, ()))} for c in corrections]


async def teaching_page(request: web.Request) -> web.Response:
    corrections = await call(review.corrections, clinic(request))
    data_dir = request.app[keys.SETTINGS].data_dir
    untrained = await call(review.untrained_corrections, clinic(request), data_dir, tracker(request))
    ids = [c.conversation_id for c in corrections]
    names = await call(review.known_names, clinic(request), ids, tracker(request))
    context = {
        "corrections": _listed(corrections, names),
        "untrained": _listed(untrained, names),
        "placeholders": masking.PLACEHOLDERS,
    }
    return page(request, "teaching.html", context)


async def corrections_yaml(request: web.Request) -> web.Response:
    """Every correction as Rasa NLU training data, to review and add to data/nlu; audited."""
    body = await call(review.corrections_yaml, clinic(request), tracker(request))
    await audited(request, "export_corrections", "")  # before anything is sent: no record, no export
    headers = {"Content-Disposition": 'attachment; filename="corrections.yml"'}
    return web.Response(text=body, content_type="text/yaml", charset="utf-8", headers=headers)
