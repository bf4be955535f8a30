"""Turning the assistant's replies into SMS text: plain, cheap and readable on a phone.

An SMS is sent in one of two encodings. GSM-7 packs the characters of the GSM 03.38 alphabet
(basic Latin, a few accented letters, some Greek capitals) into 7 bits each, so a single segment
holds 160 of them. A single character outside that alphabet, be it an emoji or just a curly
apostrophe, forces the whole message into UCS-2 (UTF-16), where a segment holds only 70. Long
messages travel as several segments with a small header each: 153 septets or 67 UTF-16 units apiece.
One "don’t" can therefore more than double what a reply costs, and carriers bill per segment.

So replies are made plain (no markdown, which phones show literally) and transliterated to GSM-7
wherever a plain equivalent reads just as well. Characters with no such equivalent (emoji, CJK)
are left alone: UCS-2 is then the right encoding, not a mistake.
"""

import bisect
import re
import unicodedata
from typing import Callable, List, Optional, Pattern

# GSM 03.38 basic character set, in table order; the escape (0x1B) is left out, being no character.
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Reached through the escape, so each costs two septets.
GSM7_EXTENDED = "\f^{}\\[~]|€"
_GSM7 = frozenset(GSM7_BASIC + GSM7_EXTENDED)

GSM7_SINGLE, GSM7_CONCATENATED = 160, 153
UCS2_SINGLE, UCS2_CONCATENATED = 70, 67

_QUOTES = {"‘": "'", "’": "'", "‚": "'", "‛": "'", "′": "'", "´": "'", "`": "'", "‹": "'", "›": "'"}
_DOUBLE_QUOTES = {"“": '"', "”": '"', "„": '"', "‟": '"', "″": '"', "«": '"', "»": '"'}
_DASHES = dict.fromkeys("‐‑‒–—―−⁃", "-")
_SPACES = dict.fromkeys("\t\u00a0\u202f\u205f\u3000" + "".join(map(chr, range(0x2000, 0x200B))), " ")
# Invisible characters that only cost money; joiners are handled apart, as emoji sequences need them.
_INVISIBLE = dict.fromkeys("\u00ad\u200b\u2060\ufeff", "")
_SYMBOLS = {"…": "...", "•": "-", "‣": "-", "◦": "-", "×": "x", "⁄": "/", "≤": "<=", "≥": ">=", "→": "->"}
_LINE_BREAKS = {"\r": "\n", "\u2028": "\n", "\u2029": "\n"}
# Letters that NFKD leaves whole (a stroke or ligature is no combining mark).
_LETTERS = {"ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ı": "i", "œ": "oe", "Œ": "OE"}
_REPLACEMENTS = str.maketrans(
    {**_QUOTES, **_DOUBLE_QUOTES, **_DASHES, **_SPACES, **_INVISIBLE, **_SYMBOLS, **_LINE_BREAKS, **_LETTERS}
)
_JOINER = re.compile("[\u200c\u200d]")


def is_gsm7(text: str) -> bool:
    """Whether the text can be sent in GSM-7 (basic or extension table characters only)."""
    return all(char in _GSM7 for char in text)


def to_gsm7(text: str) -> str:
    """The text with characters that would force UCS-2 replaced by plain GSM-7 ones, where one will do."""
    text = unicodedata.normalize("NFC", text.replace("\r\n", "\n")).translate(_REPLACEMENTS)
    out: List[str] = []
    for char in text:
        if _is_mark(char) and out and out[-1][-1] in _GSM7:
            continue  # NFC found no GSM letter with this mark on it: the bare letter reads fine
        out.append(_plain_char(char))
    return _JOINER.sub(_keep_joining, "".join(out))


def _is_mark(char: str) -> bool:
    return unicodedata.category(char).startswith("M")


def _plain_char(char: str) -> str:
    """``char`` itself if GSM-7, else its base letter(s) if those are GSM-7 (á -> a, ﬁ -> fi), else ``char``."""
    if char in _GSM7:
        return char  # é, ü, ñ, Ø... are GSM-7: decomposing them would only lose information
    base = "".join(part for part in unicodedata.normalize("NFKD", char) if not _is_mark(part))
    base = base.translate(_REPLACEMENTS)
    # A spacing accent (¨, ¸) decomposes to a bare space, which would read as a gap in a word.
    return base if base.strip() and is_gsm7(base) else char


def _keep_joining(match: "re.Match[str]") -> str:
    """A zero-width (non-)joiner between two non-GSM characters builds an emoji or a script's glyph: keep it."""
    before = match.string[match.start() - 1 : match.start()]
    after = match.string[match.end() : match.end() + 1]
    return match.group() if before and after and not is_gsm7(before) and not is_gsm7(after) else ""


def segments(text: str) -> int:
    """How many SMS segments the text takes (0 when empty).

    Segments are filled greedily and a character never straddles two: an escaped GSM-7 character
    (two septets) or a surrogate pair (two UTF-16 units) moves whole to the next segment, as encoders do.
    """
    if not text:
        return 0
    if is_gsm7(text):
        return _segment_count([2 if char in GSM7_EXTENDED else 1 for char in text], GSM7_SINGLE, GSM7_CONCATENATED)
    return _segment_count([2 if ord(char) > 0xFFFF else 1 for char in text], UCS2_SINGLE, UCS2_CONCATENATED)


def _segment_count(costs: List[int], single: int, concatenated: int) -> int:
    if sum(costs) <= single:
        return 1
    count, used = 1, 0
    for cost in costs:
        if used + cost > concatenated:
            count, used = count + 1, 0
        used += cost
    return count


_FENCE = re.compile(r"^[ \t]*(?:```|~~~).*\n?", re.M)
_AUTOLINK = re.compile(r"<((?:https?|mailto|tel):[^<>\s]+)>")
# [label](url "title") and ![alt](url); one level of parentheses is allowed in the url (Wikipedia's).
_LINK = re.compile(r"!?\[([^\]\n]*)\]\(\s*<?((?:[^()\s<>]|\([^()\s]*\))+)>?(?:\s+\"[^\"\n]*\")?\s*\)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.S)
_URL = re.compile(r"\b(?:https?://|www\.|mailto:|tel:)[^\s<>]*[^\s<>.,;:!?*_)'\"]")
_PLACEHOLDER = re.compile("\ue000(\\d+)\ue001")
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$", re.M)
_BULLET = re.compile(r"^[ \t]*[*+][ \t]+", re.M)
# Markers count only outside words, so snake_case, 2*3 and 2**3 survive; CommonMark is laxer about *.
_STRONG = re.compile(r"(?<![\w*])\*\*(?=\S)([^\n]+?)(?<=\S)\*\*(?![\w*])|(?<!\w)__(?=\S)([^\n]+?)(?<=\S)__(?!\w)")
_EMPHASIS = re.compile(
    r"(?<![\w*])\*(?=[^\s*])([^\n*]+?)(?<=[^\s*])\*(?![\w*])|(?<!\w)_(?=[^\s_])([^\n]+?)(?<=[^\s_])_(?!\w)"
)
_TRAILING_SPACES = re.compile(r"[ \t]+$", re.M)
_BLANK_LINES = re.compile(r"\n{3,}")


def plain_text(text: str) -> str:
    """Markdown as a phone should show it: no markers, links as ``label (url)``, at most one blank line."""
    text = _FENCE.sub("", text.replace("\r\n", "\n"))
    text = _LINK.sub(_plain_link, _AUTOLINK.sub(r"\1", text))
    # Code and URLs are set aside so that markers inside them (my_page_name, __init__) are kept.
    kept: List[str] = []
    text = _CODE_SPAN.sub(lambda m: _set_aside(m.group(2), kept), text)
    text = _URL.sub(lambda m: _set_aside(m.group(), kept), text)
    text = _BULLET.sub("- ", _HEADING.sub(r"\1", text))
    text = _EMPHASIS.sub(_inner, _STRONG.sub(_inner, text))
    text = _PLACEHOLDER.sub(lambda m: kept[int(m.group(1))], text)
    return _BLANK_LINES.sub("\n\n", _TRAILING_SPACES.sub("", text)).strip()


def _plain_link(match: "re.Match[str]") -> str:
    label, url = match.group(1).strip(), match.group(2)
    if not label or _address(label) == _address(url):
        return label or url  # "clinic.org (https://clinic.org/)" would say it twice
    return f"{label} ({url})"


def _address(text: str) -> str:
    return re.sub(r"^(?:https?://|mailto:|tel:)|\s|/$", "", text.lower())


def _set_aside(text: str, kept: List[str]) -> str:
    kept.append(text)
    return f"\ue000{len(kept) - 1}\ue001"


def _inner(match: "re.Match[str]") -> str:
    return match.group(1) if match.group(1) is not None else match.group(2)


def numbered_choices(titles: List[str]) -> str:
    """Buttons as a sentence: ``Reply 1 for A, 2 for B or 3 for C.`` (empty for no titles)."""
    plain = [" ".join(to_gsm7(plain_text(title)).split()) for title in titles]
    if not plain:
        return ""
    options = [f"{number} for {title}" for number, title in enumerate(plain, start=1)]
    listed = options[0] if len(options) == 1 else f"{', '.join(options[:-1])} or {options[-1]}"
    # A title's own "?" or "!" may stand before the period; its own period may not be doubled.
    return f"Reply {listed}" + ("" if listed.endswith(".") else ".")


def choice_number(body: str, count: int) -> Optional[int]:
    """The 0-based choice a reply like ``2``, `` 2 ``, ``2.`` or ``#2`` picks out of ``count``, else None.

    Strict on purpose: "2 please" or "twenty" may be a question, so they go to the assistant as words.
    """
    answer = to_gsm7(body).strip().rstrip(".!)").strip().removeprefix("#").strip()  # to_gsm7: keycaps, full-width
    if not re.fullmatch(r"[0-9]{1,3}", answer):
        return None
    number = int(answer)
    return number - 1 if 1 <= number <= count else None


# Where a long reply may be cut, best first: paragraphs, lines (lists), sentences, words.
_BREAKS: List[Pattern[str]] = [
    re.compile(r"(\n[ \t]*\n\s*)"),
    re.compile(r"(\n\s*)"),
    re.compile(r"((?<=[.!?])[\"')\]]*\s+)"),
    re.compile(r"(\s+)"),
]
Fits = Callable[[str], bool]


def shape_reply(texts: List[str], buttons: List[str], max_segments: int = 4) -> List[str]:
    """The SMS message(s) for one turn of the assistant: its texts, then the buttons as numbered choices.

    One message when it fits in ``max_segments`` (the phone shows concatenated segments as one text);
    otherwise several, cut cleanly, with the choices kept whole in the last one.
    """
    if max_segments < 1:
        raise ValueError("max_segments must be at least 1")
    body = "\n\n".join(filter(None, (to_gsm7(plain_text(text)) for text in texts)))
    choices = numbered_choices(buttons)
    whole = "\n".join(filter(None, (body, choices)))

    def fits(message: str) -> bool:
        return segments(message) <= max_segments

    if not whole or fits(whole):
        return [whole] if whole else []
    if not body:
        return [choices]  # over budget, but a list cut in two could not be answered
    messages = _split(body, fits)
    return _with_choices(messages, choices, fits) if choices else messages


def _with_choices(messages: List[str], choices: str, fits: Fits) -> List[str]:
    """The choices appended to the last message, cutting that one again if they do not fit beside it."""

    def fits_beside(message: str) -> bool:
        return fits(f"{message}\n{choices}")

    tail = _split(messages[-1], fits_beside)
    if not all(map(fits_beside, tail)):
        return messages + [choices]  # the list leaves no room for text: it goes alone
    return messages[:-1] + tail[:-1] + [f"{tail[-1]}\n{choices}"]


def _split(text: str, fits: Fits, level: int = 0) -> List[str]:
    """The text cut into messages that fit, at the coarsest kind of break (from ``level`` on) that helps."""
    text = text.strip()
    if fits(text):
        return [text]
    for depth in range(level, len(_BREAKS)):
        pieces = _pieces(text, _BREAKS[depth])
        if len(pieces) > 1:
            return _pack(pieces, fits, depth + 1)
    return _cut_word(text, fits)


def _pieces(text: str, pattern: Pattern[str]) -> List[str]:
    """The text split after each break, each piece keeping the whitespace that followed it."""
    parts = pattern.split(text)
    return [part + separator for part, separator in zip(parts[::2], parts[1::2] + [""], strict=True)]


def _pack(pieces: List[str], fits: Fits, level: int) -> List[str]:
    """As many whole pieces per message as fit; a piece too big alone is cut at finer breaks."""
    messages: List[str] = []
    current = ""
    for piece in pieces:
        if fits((current + piece).strip()):
            current += piece
            continue
        if current.strip():
            messages.append(current.strip())
        current = piece
        if not fits(piece.strip()):
            *done, last = _split(piece, fits, level)
            messages.extend(done)
            current = last + piece[len(piece.rstrip()) :]  # its trailing break still separates it from the next
    if current.strip():
        messages.append(current.strip())
    return messages


def _cut_word(word: str, fits: Fits) -> List[str]:
    """A single word too long for one message (a long URL), cut into the longest prefixes that fit."""
    cuts: List[str] = []
    while word:
        # Fitting is monotonic in a prefix's length, so the longest fitting prefix can be bisected.
        size = bisect.bisect_left(range(1, len(word) + 1), True, key=lambda n: not fits(word[:n]))
        size = max(size, 1)  # always progress, even when nothing fits
        cuts.append(word[:size])
        word = word[size:]
    return cuts
