"""The clinic profile and the contact wording built from it.

The article names the clinic and its town but gives no phone, address, hours
or website. Those come from ``clinic.yml`` (or ``CLINIC_<FIELD>`` variables);
a missing value is never invented: the wording falls back to what the article
itself says (call the office or go online to request a consultation).
"""

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Dict, Optional

import yaml

from clinic_assistant import settings


@dataclass(frozen=True)
class ClinicProfile:
    name: str = "the Crane Center"
    location: str = "Destin, Florida"
    phone: str = ""
    address: str = ""
    website: str = ""
    hours: str = ""

    @property
    def title(self) -> str:
        """The name as a heading shows it ("The Crane Center")."""
        return _capitalise(self.name)

    def contact_line(self) -> str:
        """One sentence telling a visitor how to reach the clinic's staff."""
        ways = self._ways(website_phrase="go to {}")
        if not ways:
            return (
                f"Please call {self.name} in {self.location}, "
                "or request a consultation on its website."
            )
        return "To reach the clinic's staff, " + _join(ways) + "."

    def details_line(self) -> str:
        """Everything the profile knows about reaching the clinic."""
        ways = self._ways(website_phrase="go to {}")
        if self.address:
            ways.append(f"visit {self.address}")
        if not ways:
            return f"I don't have the clinic's phone number or address here. {self.contact_line()}"
        return f"{_capitalise(self.name)}: " + _join(ways) + "."

    def _ways(self, website_phrase: str) -> list:
        """The phone and website as things to do, in that order."""
        ways = [f"call {self.phone}"] if self.phone else []
        if self.website:
            ways.append(website_phrase.format(self.website))
        return ways

    def hours_line(self) -> str:
        if self.hours:
            return f"{_capitalise(self.name)} is open {self.hours}. {self.contact_line()}"
        return f"I don't have the clinic's opening hours here. {self.contact_line()}"

    def booking_line(self) -> str:
        ways = self._ways(website_phrase="request one at {}")
        if ways:
            return f"To request a consultation, {_join(ways)}."
        return (
            f"To request a consultation, call {self.name} in {self.location}, "
            "or request one on its website."
        )

    def as_slots(self) -> Dict[str, str]:
        """The slot values the responses interpolate."""
        return {
            "clinic_name": self.name,
            "clinic_location": self.location,
            "clinic_contact": self.contact_line(),
            "clinic_details": self.details_line(),
            "clinic_hours": self.hours_line(),
            "clinic_booking": self.booking_line(),
        }


def _join(parts: list) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def load_profile(path: Optional[Path] = None) -> ClinicProfile:
    """Read the profile file, then let ``CLINIC_<FIELD>`` variables override it."""
    path = path or settings.CLINIC_PROFILE_PATH
    values: Dict[str, str] = {}
    if path.exists():
        values = {k: str(v or "").strip() for k, v in (yaml.safe_load(path.read_text()) or {}).items()}
    known = {f.name for f in fields(ClinicProfile)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"Unknown clinic profile fields in {path}: {sorted(unknown)}")
    for name in known:
        override = os.environ.get(f"CLINIC_{name.upper()}")
        if override is not None:
            values[name] = override.strip()
    # The article gives a name and a town, so those never fall back to blank.
    for required in ("name", "location"):
        if not values.get(required):
            values.pop(required, None)
    return ClinicProfile(**values)
