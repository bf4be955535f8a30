"""What every channel accepts from outside: well-formed text of bounded size.

A lone UTF-16 surrogate cannot be stored (SQLAlchemy raises while encoding it), PostgreSQL refuses NUL in
text, and control characters in an id spoof what staff see. So every channel refuses them before anything
reaches Rasa or a store, each with a reason a caller can act on.
"""

import json
import re
import unicodedata
from typing import Any, Optional

# Far beyond any real message (an SMS is at most 1,600 characters), and what the widget's text box allows.
MAX_MESSAGE_LENGTH = 5000
# A REST request's body: a message of 5,000 characters as escaped JSON, metadata and room to spare.
MAX_BODY_BYTES = 64 * 1024
# Metadata an integration may attach to a REST message, as JSON, and how deeply it may nest.
MAX_METADATA_BYTES = 2048
MAX_METADATA_DEPTH = 4
# Conversation ids chosen by REST callers: letters, digits and a few separators, as ids and URLs carry them.
SENDER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,99}")
SENDER_RULE = 'letters, digits, ".", "_", ":" or "-" (at most 100, starting with a letter or digit)'

# Control characters a person never types; tab and line breaks are kept. Unicode category Cc, minus those.
_ALLOWED_CONTROLS = {"\t", "\n", "\r"}


def text_problem(value: Any, field: str, max_length: int = MAX_MESSAGE_LENGTH) -> Optional[str]:
    """Why ``value`` is not acceptable as the text of ``field``, or None."""
    if not isinstance(value, str):
        return f'"{field}" must be a string.'
    if len(value) > max_length:
        return f'"{field}" is {len(value)} characters; at most {max_length} are accepted.'
    if not _encodable(value):
        return f'"{field}" must be valid Unicode text (it holds an unpaired surrogate).'
    if any(unicodedata.category(c) == "Cc" and c not in _ALLOWED_CONTROLS for c in value):
        return f'"{field}" must not contain NUL or other control characters.'
    return None


def without_controls(text: str) -> str:
    """``text`` without the control characters ``text_problem`` refuses (for text that must not be lost)."""
    return "".join(c for c in text if unicodedata.category(c) != "Cc" or c in _ALLOWED_CONTROLS)


def sender_problem(value: Any) -> Optional[str]:
    """Why ``value`` is not acceptable as a REST caller's conversation id, or None."""
    if not isinstance(value, str) or not SENDER_PATTERN.fullmatch(value):
        return f'"sender" must be {SENDER_RULE}.'
    return None


def metadata_problem(value: Any) -> Optional[str]:
    """Why ``value`` is not acceptable as a message's metadata, or None (absent metadata is fine)."""
    if value is None:
        return None
    if not isinstance(value, dict):
        return '"metadata" must be a JSON object when given.'
    if _depth(value) > MAX_METADATA_DEPTH:
        return f'"metadata" may nest at most {MAX_METADATA_DEPTH} levels.'
    try:
        size = len(json.dumps(value, ensure_ascii=False).encode("utf-8"))
    except UnicodeEncodeError:
        return '"metadata" must be valid Unicode text (it holds an unpaired surrogate).'
    if size > MAX_METADATA_BYTES:
        return f'"metadata" is {size} bytes as JSON; at most {MAX_METADATA_BYTES} are accepted.'
    return None


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _depth(value: Any, level: int = 0) -> int:
    """How many containers deep ``value`` nests; stops once past the limit, so a deep value costs little."""
    if level > MAX_METADATA_DEPTH or not isinstance(value, (dict, list)):
        return level
    children = value.values() if isinstance(value, dict) else value
    return max((_depth(child, level + 1) for child in children), default=level + 1)
