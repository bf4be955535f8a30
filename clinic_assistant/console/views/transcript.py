"""A conversation's transcript, with its flags, requests, tags, notes and review; contacts masked unless revealed.

Masked: phone numbers, e-mail addresses and the names the patient gave the forms, wherever they appear in the
conversation (the assistant's read-back of the request included), in messages, slots and flags alike.
"""

import json
from typing import Any, Dict, List, Sequence

from aiohttp import web

from clinic_assistant.console.masking import mask_contacts, mask_slot
from clinic_assistant.console.views.common import (
    actor,
    audited,
    bad_request,
    call,
    clinic,
    conversation_path,
    page,
    see_other,
    tracker,
)
from clinic_assistant.console.views.requests import KINDS
from clinic_assistant.console.views.teaching import correction_choices
from clinic_assistant.store import review


def slot_text(name: str, value: Any, revealed: bool, names: Sequence[str] = ()) -> str:
    """A slot's value as text; contact slots (and contacts and ``names`` in any text) masked unless revealed."""
    shown = value if revealed else mask_slot(name, value, names)
    return shown if isinstance(shown, str) else json.dumps(shown, ensure_ascii=False)


def _turns(found: review.Transcript, revealed: bool) -> List[Dict[str, Any]]:
    def text(turn: review.Turn) -> str:
        return (turn.text or "") if revealed else mask_contacts(turn.text or "", found.names)

    return [{"turn": turn, "text": text(turn)} for turn in found.turns]


def _corrections_by_message(corrections: List[review.Correction], conversation_id: str) -> Dict[int, Any]:
    # The newest correction of each message (the one that counts), to show next to it; the list is newest first.
    return {c.message_id: c for c in reversed(corrections) if c.conversation_id == conversation_id}


async def show(request: web.Request, revealed: bool) -> web.Response:
    conversation_id = request.match_info["id"]
    try:
        found = await call(review.transcript, tracker(request), clinic(request), conversation_id)
    except review.ConversationNotFound:
        return page(request, "transcript.html", {"conversation_id": conversation_id, "found": None}, status=404)
    # Audited before anything is shown: no record, no transcript.
    await audited(request, "reveal_contact" if revealed else "view_transcript", conversation_id)
    corrections = await call(review.corrections, clinic(request))
    context = {
        "conversation_id": conversation_id,
        "found": found,
        "revealed": revealed,
        "turns": _turns(found, revealed),
        "slots": [(name, slot_text(name, value, revealed, found.names)) for name, value in sorted(found.slots.items())],
        "flags": [{"flag": flag, "message": flag.message if revealed else mask_contacts(flag.message, found.names)}
                  for flag in found.flags],
        "corrected": _corrections_by_message(corrections, conversation_id),
        "choices": correction_choices(),
        "request_kinds": KINDS,
        "max_tag": review.MAX_TAG_CHARS,
        "max_note": review.MAX_NOTE_CHARS,
    }
    return page(request, "transcript.html", context)


async def transcript_page(request: web.Request) -> web.Response:
    return await show(request, revealed=False)


async def reveal(request: web.Request) -> web.Response:
    """The transcript with contact details shown: a POST (never a link to share or bookmark), audited."""
    return await show(request, revealed=True)


async def _text(request: web.Request, name: str, limit: int, one_line: bool = False) -> str:
    value = str((await request.post()).get(name, "")).strip()
    if one_line:
        value = " ".join(value.split())
    if not value or len(value) > limit:
        raise bad_request(f"The {name} must have 1 to {limit} characters.")
    return value


async def _change(request: web.Request, change: Any, *args: Any) -> str:
    """Apply ``change(clinic, conversation_id, *args, actor)``; 404 for an unknown conversation."""
    conversation_id = request.match_info["id"]
    try:
        await call(change, clinic(request), conversation_id, *args, actor(request))
    except review.ConversationNotFound as missing:
        raise web.HTTPNotFound(text="No such conversation.") from missing
    except ValueError as problem:
        raise bad_request(str(problem)) from problem
    return conversation_id


async def add_tag(request: web.Request) -> web.Response:
    tag = await _text(request, "tag", review.MAX_TAG_CHARS, one_line=True)
    conversation_id = await _change(request, review.tag, tag)
    raise see_other(conversation_path(conversation_id), "tagged", "tags")


async def remove_tag(request: web.Request) -> web.Response:
    conversation_id = await _change(request, review.untag, request.match_info["tag"])
    raise see_other(conversation_path(conversation_id), "untagged", "tags")


async def add_note(request: web.Request) -> web.Response:
    conversation_id = await _change(request, review.add_note, await _text(request, "text", review.MAX_NOTE_CHARS))
    raise see_other(conversation_path(conversation_id), "noted", "notes")


async def mark_reviewed(request: web.Request) -> web.Response:
    conversation_id = await _change(request, review.mark_reviewed)
    raise see_other(conversation_path(conversation_id), "reviewed")
