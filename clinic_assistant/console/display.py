"""Text from visitors (sender ids, messages, names) as staff see it: characters that would hide text or reorder
what is around it are shown as what they are, e.g. ``⟨U+202E⟩``.

A right-to-left override (U+202E) in a sender id can make "evil<U+202E>gnp.exe" read as "evilexe.png", an
invisible character can make two ids look the same, a NUL can cut a line short. Templates show such text
through the ``visible`` filter (registered by ``console.app``); the CSV exports use the same function.
"""

import unicodedata

# Controls (Cc), format characters (Cf: bidi embeddings, overrides, isolates and marks, zero-width characters,
# invisible tag characters), line and paragraph separators, and lone surrogates.
_SHOWN_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_KEPT = frozenset("\n\t")  # line breaks and tabs lay out multi-line messages; they reorder nothing
# Zero-width (non-)joiners bind emoji sequences (woman + ZWJ + health worker) and shape Persian or Indic words:
# kept between two non-ASCII characters, shown anywhere else (where they only make look-alikes, "adm\u200din").
_JOINERS = frozenset("\u200c\u200d")


def visible(value: object) -> str:
    """``value`` as text with every control, format and separator character shown as ``⟨U+XXXX⟩``."""
    text = "" if value is None else str(value)
    if text.isprintable():  # the usual case: nothing to show
        return text
    return "".join(_shown(text, index) for index in range(len(text)))


def _shown(text: str, index: int) -> str:
    char = text[index]
    if char in _KEPT or unicodedata.category(char) not in _SHOWN_CATEGORIES:
        return char
    if char in _JOINERS and _between_non_ascii(text, index):
        return char
    return f"\u27e8U+{ord(char):04X}\u27e9"


def _between_non_ascii(text: str, index: int) -> bool:
    before, after = text[index - 1 : index], text[index + 1 : index + 2]
    return all(c and not c.isascii() and unicodedata.category(c) not in _SHOWN_CATEGORIES for c in (before, after))
