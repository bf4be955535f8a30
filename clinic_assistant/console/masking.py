"""Contact details hidden from the console's pages until a reviewer reveals them (an audited action).

Phone numbers keep their area code and last two digits, e-mail addresses their first letter and domain:
enough to tell two contacts apart, not enough to call or write to the patient.
"""

import re
from typing import Any, Callable

import phonenumbers

from clinic_assistant import settings

# Slots holding a patient's contact details or name: masked whole, whatever they hold.
CONTACT_SLOTS = ("consult_phone", "consult_email", "reach_out_contact", "handoff_contact", "consult_name")
# Metadata keys holding contact details (the SMS channel's sender number).
CONTACT_METADATA = ("sms_from",)
# Loose on purpose: hiding too much is harmless here, showing an address is not.
EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+")
_KEEP_LAST_DIGITS = 2


def mask_contacts(text: str) -> str:
    """``text`` with every phone number and e-mail address in it masked: ``(850) ***-**42``, ``m***@example.com``."""
    masked = lambda match: mask_phone(match.number, match.raw_string)  # noqa: E731
    return replace_numbers(mask_emails(text), masked, phonenumbers.Leniency.POSSIBLE)


def mask_emails(text: str) -> str:
    """``text`` with every e-mail address in it masked: ``m***@example.com``."""
    return EMAIL.sub(lambda match: mask_email(match.group()), text) if "@" in text else text


def mask_email(address: str) -> str:
    local, _, domain = address.rpartition("@")
    return f"{local[:1]}***@{domain}"


def replace_numbers(
    text: str, replace: Callable[[phonenumbers.PhoneNumberMatch], str], leniency: phonenumbers.Leniency
) -> str:
    """``text`` with each phone number found at ``leniency`` (read as PHONE_REGION's if it has no country code)
    replaced by ``replace(match)``."""
    pieces, end = [], 0
    for match in phonenumbers.PhoneNumberMatcher(text, settings.PHONE_REGION, leniency=leniency):
        pieces += [text[end : match.start], replace(match)]
        end = match.end
    return "".join(pieces) + text[end:]


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


def mask_name(name: str) -> str:
    """A name as shown before reveal: its first letter only."""
    name = name.strip()
    return f"{name[:1]}***" if name else ""


def mask_slot(name: str, value: Any) -> Any:
    """A slot's value as the console shows it before reveal: contact slots masked whole, contacts masked anywhere."""
    if name == "consult_name" and isinstance(value, str):
        return mask_name(value)
    if name in CONTACT_SLOTS and value is not None:
        return mask_contacts(value) if isinstance(value, str) and value != mask_contacts(value) else "***"
    return mask_value(value)


def mask_value(value: Any) -> Any:
    """Strings with contacts masked, ``sms_from`` metadata masked, in any nesting of lists and dicts."""
    if isinstance(value, str):
        return mask_contacts(value)
    if isinstance(value, dict):
        return {k: "***" if k in CONTACT_METADATA and v else mask_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_value(item) for item in value]
    return value
