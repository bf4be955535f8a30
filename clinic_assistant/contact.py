"""Find a phone number or an e-mail address in what a visitor wrote.

Visitors type contact details with the rest of a sentence ("call me on
850 555 0100 after 5pm"), so the number or address is searched for, not
required to be the whole message. Phone numbers are read by libphonenumber
(US by default: the clinic is in Florida) and stored in E.164.
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


def find_contact(text: str, region: str = settings.PHONE_REGION) -> Optional[Contact]:
    """The first valid phone number or e-mail address in ``text``, if any."""
    for match in phonenumbers.PhoneNumberMatcher(text, region):
        if phonenumbers.is_valid_number(match.number):
            return Contact("phone", phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164))
    for candidate in _EMAIL_CANDIDATE.findall(text):
        try:
            address = validate_email(candidate.rstrip("."), check_deliverability=False)
        except EmailNotValidError:
            continue
        return Contact("email", address.normalized)
    return None
