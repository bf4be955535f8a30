"""Find a phone number or an e-mail address in what a visitor wrote.

Visitors type contact details with the rest of a sentence ("call me on
850 555 0100 after 5pm"), so the number or address is searched for, not
required to be the whole message. Phone numbers are read by libphonenumber
(US by default: the clinic is in Florida) and given in E.164.
"""

import re
from dataclasses import dataclass
from typing import Optional

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from clinic_assistant import settings

_EMAIL_CANDIDATE = re.compile(r"[^\s<>(),;:\"']+@[^\s<>(),;:\"']+")


@dataclass(frozen=True)
class Contact:
    kind: str  # "phone" or "email"
    value: str  # E.164 phone number or normalised e-mail address


def find_phone(text: str, region: str = settings.PHONE_REGION) -> Optional[str]:
    """The first valid phone number in ``text``, in E.164."""
    for match in phonenumbers.PhoneNumberMatcher(text, region):
        if phonenumbers.is_valid_number(match.number):
            return phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
    return None


def parse_phone(text: str, region: str = settings.PHONE_REGION) -> Optional[str]:
    """``text`` as one valid phone number in E.164, or None."""
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def parse_email(text: str) -> Optional[str]:
    """``text`` as one valid e-mail address (normalised), or None."""
    try:
        return validate_email(text.strip(), check_deliverability=False).normalized
    except EmailNotValidError:
        return None


def find_email(text: str) -> Optional[str]:
    """The first valid e-mail address in ``text``."""
    for candidate in _EMAIL_CANDIDATE.findall(text):
        address = parse_email(candidate.rstrip("."))
        if address:
            return address
    return None


def find_contact(text: str, region: str = settings.PHONE_REGION) -> Optional[Contact]:
    """The first valid phone number, else e-mail address, in ``text``."""
    phone = find_phone(text, region)
    if phone:
        return Contact("phone", phone)
    email = find_email(text)
    return Contact("email", email) if email else None
