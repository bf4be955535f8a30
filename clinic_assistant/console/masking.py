"""Contact details hidden from the console's pages until a reviewer reveals them (an audited action), and taken out
of the training data the console exports.

Phone numbers keep their area code and last two digits, e-mail addresses their first letter and domain, names their
first letter: enough to tell two contacts apart, not enough to call or write to the patient.

Found: phone numbers (libphonenumber's matcher, and a conservative rule for numbers run into more digits such as
"8505550142123" or "850 555 0142 3pm"), e-mail addresses, also written out ("maria (at) example (dot) com"), and the
names a conversation's forms collected, wherever they appear in it (the assistant's read-back included).
"""

import re
from functools import lru_cache
from typing import Any, Callable, Iterable, Iterator, List, Optional, Pattern, Sequence, Tuple

import phonenumbers
from phonenumbers import PhoneNumberMatch

from clinic_assistant import settings

# Slots holding a patient's contact details or name: masked whole, whatever they hold.
CONTACT_SLOTS = ("consult_phone", "consult_email", "reach_out_contact", "handoff_contact", "consult_name")
# Slots the forms fill with the patient's name (the handoff form reuses the consultation form's).
NAME_SLOTS = ("consult_name",)
# Metadata keys holding contact details (the SMS channel's sender number).
CONTACT_METADATA = ("sms_from",)
# What the training data export puts in place of each kind of detail.
PLACEHOLDERS = {"phone": "[phone]", "email": "[email]", "name": "[name]"}
_KEEP_LAST_DIGITS = 2

# ---- E-mail addresses ----
# Loose on purpose: hiding too much is harmless here, showing an address is not. A local part starts where a word
# does (the look-behind), so a long run of letters without an address is scanned once, not once per letter.
_LOCAL = r"(?<![\w.!#$%&'*+/=?^`{|}~-])[\w.!#$%&'*+/=?^`{|}~-]+"
EMAIL = re.compile(_LOCAL + r"@[\w-]+(?:\.[\w-]+)+")
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
_TLD = r"[^\W\d_]{2,24}(?![\w-])"


def _bracketed(word: str) -> str:
    return rf"[(\[{{<]\s*{word}\s*[)\]}}>]"


# "@" or "(at)" / "[at]" / "<at>" are sure signs: the dots around them may be spaced or written out too.
_SURE_AT = rf"\s*(?:@|{_bracketed('at')}|{_bracketed('@')})\s*"
_ANY_DOT = rf"\s*(?:\.|{_bracketed('dot')})\s*|\s+dot\s+"
# A bare "at" is an everyday word: only with an unspaced or written-out dot and a final label of letters
# ("maria at example dot com", "maria at example.com"), never "I was at work. Then".
_BARE_AT = r"\s+at\s+"
_TIGHT_DOT = rf"\.(?=\w)|\s*{_bracketed('dot')}\s*|\s+dot\s+"
_WRITTEN_OUT = [
    re.compile(rf"(?P<local>{_LOCAL})(?:{at})(?P<domain>{_LABEL}(?:(?:{dot}){_LABEL})*?(?:{dot}){_TLD})", re.I)
    for at, dot in ((_SURE_AT, _ANY_DOT), (_BARE_AT, _TIGHT_DOT))
]
_DOTS = re.compile(_ANY_DOT, re.I)

# ---- Phone numbers run into more digits ----
# Digit groups joined by spaces, dots, dashes or brackets, not inside a word or an id, and not a time ("10:30"),
# a fraction or score ("9/10"), or a time of day ("3pm"): the rule only looks at what the matcher passed over.
_DIGIT_RUN = re.compile(r"(?<![\w/.-])(?<!\d:)\+?\(?\d+\)?(?:[ .-]{1,2}\(?\d+\)?)*(?![\w/:])")
# Dates written with dashes or dots split a run: "2024-05-12 10" is a date and an hour, not a phone number. Only
# plausible ones, and not within a longer chain of groups: "01.23.45.67.89" is a phone number written the French way.
_DATE = re.compile(
    r"(?<!\d)(?<!\d[-.])(?:(?P<year>\d{4})[-.](?P<month>\d{1,2})[-.](?P<day>\d{1,2})"
    r"|(?P<first>\d{1,2})[-.](?P<second>\d{1,2})[-.](?:\d{4}|\d{2}))(?!\d)(?![-.]\d)"
)
_MIN_RUN_DIGITS = 8  # shorter runs are counts, years, times and scores
_MAX_RUN_DIGITS = 64  # beyond this a run is hidden whole rather than searched window by window
_NUMBER_LENGTHS = range(15, 7, -1)  # E.164 numbers have at most 15 digits; the longest valid reading wins


def mask_contacts(text: str, names: Sequence[str] = ()) -> str:
    """``text`` with every phone number, e-mail address and name in ``names`` masked: ``(850) ***-**42``,
    ``m***@example.com``, ``M***``."""
    masked = lambda match: mask_phone(match.number, match.raw_string)  # noqa: E731
    text = mask_names(mask_emails(text), names)
    return replace_numbers(text, masked, phonenumbers.Leniency.POSSIBLE)


def redact(text: str, names: Sequence[str] = ()) -> str:
    """``text`` for training data: phone numbers, e-mail addresses and ``names`` replaced by ``[phone]``,
    ``[email]``, ``[name]``."""
    text = replace_emails(text, lambda local, domain: PLACEHOLDERS["email"])
    text = replace_names(text, names, lambda name: PLACEHOLDERS["name"])
    text = replace_numbers(text, lambda match: PLACEHOLDERS["phone"], phonenumbers.Leniency.POSSIBLE)
    # "[phone](x)" or "[name]{...}" would read as an entity annotation in Rasa's NLU data.
    return re.sub(r"(\[(?:phone|email|name)\])(?=[(\[{])", r"\1 ", text)


# ---- E-mail addresses ----


def mask_emails(text: str) -> str:
    """``text`` with every e-mail address in it, written out or not, masked: ``m***@example.com``."""
    return replace_emails(text, mask_email_parts)


def replace_emails(text: str, replace: Callable[[str, str], str]) -> str:
    """``text`` with each e-mail address replaced by ``replace(local part, domain)``; written-out addresses
    ("maria (at) example (dot) com") are given with their domain as usually written ("example.com")."""
    if "@" in text:
        text = EMAIL.sub(lambda match: replace(*match.group().rsplit("@", 1)), text)
    for pattern in _WRITTEN_OUT:
        text = pattern.sub(lambda match: replace(match["local"], ".".join(_DOTS.split(match["domain"]))), text)
    return text


def mask_email(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return mask_email_parts(local, domain)


def mask_email_parts(local: str, domain: str) -> str:
    return f"{local[:1]}***@{domain}"


# ---- Names ----


def mask_name(name: str) -> str:
    """A name as shown before reveal: its first letter only."""
    name = name.strip()
    return f"{name[:1]}***" if name else ""


def mask_names(text: str, names: Sequence[str]) -> str:
    """``text`` with each of ``names`` (whole, or any of its words) masked: ``M***``."""
    return replace_names(text, names, mask_name)


def replace_names(text: str, names: Sequence[str], replace: Callable[[str], str]) -> str:
    """``text`` with each of ``names``, and each word of them, replaced by ``replace(what was written)``, in any
    case: the patient may type "maria" and the assistant read back "Maria"."""
    pattern = _names_pattern(tuple(sorted({" ".join(str(n).split()) for n in names if n and str(n).strip()})))
    return pattern.sub(lambda match: replace(match.group()), text) if pattern else text


# Words a free-text name answer may hold that are not the name ("it's Maria", "my name is Jo"): masked within the
# whole name, not alone everywhere.
_NOT_NAME_WORDS = frozenset(
    "a an and the of my name is it it's its i i'm im this me call mr mrs ms miss dr just hi hello yes no".split()
)


@lru_cache(maxsize=256)
def _names_pattern(names: Tuple[str, ...]) -> Optional[Pattern[str]]:
    alternatives = set()
    for name in names:
        words = name.split()
        alternatives.add(r"\s+".join(map(re.escape, words)))
        for word in (w.strip(".,;:!?\"'()-") for w in words):
            if sum(c.isalpha() for c in word) >= 2 and word.casefold() not in _NOT_NAME_WORDS:
                alternatives.add(re.escape(word))
                if len(word) >= 4:  # cut short in a read-back ("Maria Fernanda Hernan…")
                    alternatives.add(rf"{re.escape(word[:3])}\w*(?=…)")
    if not alternatives:
        return None
    ordered = sorted(alternatives, key=len, reverse=True)  # the whole name before its words
    return re.compile(rf"(?<!\w)(?:{'|'.join(ordered)})(?!\w)", re.IGNORECASE)


# ---- Phone numbers ----


def replace_numbers(
    text: str, replace: Callable[[PhoneNumberMatch], str], leniency: phonenumbers.Leniency
) -> str:
    """``text`` with each phone number found at ``leniency`` (read as PHONE_REGION's if it has no country code)
    replaced by ``replace(match)``; then each valid number run into more digits, the digits around it masked."""
    if not any(char.isdigit() for char in text):
        return text
    pieces, end = [], 0
    for match in phonenumbers.PhoneNumberMatcher(text, settings.PHONE_REGION, leniency=leniency):
        if any(_dates(match.raw_string, 0, len(match.raw_string))):
            continue  # "2024-05-12 10" is a date and an hour; the digit runs around the date are still checked
        pieces += [_replace_runs(text, end, match.start, replace), replace(match)]
        end = match.end
    return "".join(pieces) + _replace_runs(text, end, len(text), replace)


def _replace_runs(text: str, start: int, stop: int, replace: Callable[[PhoneNumberMatch], str]) -> str:
    """``text[start:stop]`` with the digit runs holding a valid number replaced (see ``_DIGIT_RUN``)."""
    pieces, end = [], start
    for run in _DIGIT_RUN.finditer(text, start, stop):
        replaced = "".join(_masked_part(text, part, replace) for part in _undated_parts(run.start(), run.end(), text))
        pieces += [text[end : run.start()], replaced]
        end = run.end()
    return "".join(pieces) + text[end:stop]


def _dates(text: str, start: int, stop: int) -> Iterator["re.Match[str]"]:
    """The plausible dates in ``text[start:stop]``: a year of 1900-2099 first, or day and month either way round."""
    for found in _DATE.finditer(text, start, stop):
        if found["year"]:
            year, month, day = int(found["year"]), int(found["month"]), int(found["day"])
            plausible = 1900 <= year < 2100 and 1 <= month <= 12 and 1 <= day <= 31
        else:
            low, high = sorted((int(found["first"]), int(found["second"])))
            plausible = 1 <= low <= 12 and high <= 31
        if plausible:
            yield found


def _undated_parts(start: int, stop: int, text: str) -> Iterable[Tuple[int, int, bool]]:
    """The run ``text[start:stop]`` cut around the dates in it: (start, stop, is a date)."""
    for date in _dates(text, start, stop):
        yield start, date.start(), False
        yield date.start(), date.end(), True
        start = date.end()
    yield start, stop, False


def _masked_part(text: str, part: Tuple[int, int, bool], replace: Callable[[PhoneNumberMatch], str]) -> str:
    start, stop, is_date = part
    raw = text[start:stop]
    positions = [i for i, char in enumerate(raw) if char.isdigit()]
    if is_date or len(positions) < _MIN_RUN_DIGITS:
        return raw
    if len(positions) > _MAX_RUN_DIGITS:
        return _stars(raw)
    found = _number_in(raw, positions)
    if found is None:
        return raw
    first, last, number = found
    match = PhoneNumberMatch(start + first, raw[first:last], number)
    return _stars(raw[:first]) + replace(match) + _stars(raw[last:])


def _number_in(raw: str, positions: List[int]) -> Optional[Tuple[int, int, phonenumbers.PhoneNumber]]:
    """The first, longest valid phone number in the run's digits: (start, end in ``raw``, the number)."""
    digits = "".join(raw[i] for i in positions)
    international = raw.lstrip("(").startswith("+")
    for begin in range(len(digits)):
        for length in _NUMBER_LENGTHS:
            if begin + length > len(digits):
                continue
            plus = international and begin == 0
            number = _valid_number(digits[begin : begin + length], plus)
            if number is not None:  # a leading "+" belongs to the number, and is replaced with it
                return raw.index("+") if plus else positions[begin], positions[begin + length - 1] + 1, number
    return None


def _valid_number(digits: str, international: bool) -> Optional[phonenumbers.PhoneNumber]:
    try:
        number = phonenumbers.parse(("+" if international else "") + digits, settings.PHONE_REGION)
    except phonenumbers.NumberParseException:
        return None
    return number if phonenumbers.is_valid_number(number) else None


def _stars(text: str) -> str:
    return re.sub(r"\d", "*", text)


def mask_phone(number: phonenumbers.PhoneNumber, raw: str) -> str:
    """The number as it is usually written (``raw``, as typed, if it is not valid), only its area code (and country
    code) and last two digits shown."""
    if not phonenumbers.is_valid_number(number):
        return _mask_digits(raw, 0)
    domestic = phonenumbers.region_code_for_number(number) == settings.PHONE_REGION
    style = phonenumbers.PhoneNumberFormat.NATIONAL if domestic else phonenumbers.PhoneNumberFormat.INTERNATIONAL
    kept = phonenumbers.length_of_national_destination_code(number)
    if not domestic:
        kept += len(str(number.country_code))
    return _mask_digits(phonenumbers.format_number(number, style), kept)


def _mask_digits(written: str, kept: int) -> str:
    digits = sum(c.isdigit() for c in written)
    kept = min(kept, max(digits - _KEEP_LAST_DIGITS - 3, 0))  # at least three digits hidden, however short
    masked, seen = [], 0
    for c in written:
        if c.isdigit():
            c = c if seen < kept or seen >= digits - _KEEP_LAST_DIGITS else "*"
            seen += 1
        masked.append(c)
    return "".join(masked)


# ---- Slots and other values ----


def mask_slot(name: str, value: Any, names: Sequence[str] = ()) -> Any:
    """A slot's value as the console shows it before reveal: contact slots masked whole, contacts and ``names``
    masked anywhere."""
    if name in NAME_SLOTS and isinstance(value, str):
        return mask_name(value)
    if name in CONTACT_SLOTS and value is not None:
        if isinstance(value, str) and value != mask_contacts(value):
            return mask_contacts(value, names)
        return "***"
    return mask_value(value, names)


def mask_value(value: Any, names: Sequence[str] = ()) -> Any:
    """Strings with contacts and ``names`` masked, ``sms_from`` metadata masked, in any nesting of lists and dicts."""
    if isinstance(value, str):
        return mask_contacts(value, names)
    if isinstance(value, dict):
        return {k: "***" if k in CONTACT_METADATA and v else mask_value(v, names) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_value(item, names) for item in value]
    return value
