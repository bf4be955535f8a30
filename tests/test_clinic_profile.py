"""The clinic profile: nothing invented while unset, edits and env overrides honoured."""

import re

import pytest
import yaml

from clinic_assistant.clinic_profile import ClinicProfile, load_profile
from clinic_assistant.settings import PROJECT_DIR


def test_unset_details_are_never_invented():
    for line in ClinicProfile().as_slots().values():
        assert not re.search(r"\d", line), line
    assert "opening hours" in ClinicProfile().hours_line()


def test_set_details_are_used():
    profile = ClinicProfile(phone="(850) 555-0100", website="https://clinic.example", hours="Mon-Fri 8-5")
    assert "(850) 555-0100" in profile.contact_line()
    assert "https://clinic.example" in profile.booking_line()
    assert "Mon-Fri 8-5" in profile.hours_line()


def test_file_values_and_environment_overrides(tmp_path, monkeypatch):
    path = tmp_path / "clinic.yml"
    path.write_text("name: Harbor Pain Clinic\nlocation: Tampa, Florida\nphone: '813 555 0199'\n")
    monkeypatch.setenv("CLINIC_PHONE", "(813) 555-0100")
    profile = load_profile(path)
    assert profile.name == "Harbor Pain Clinic"
    assert profile.phone == "(813) 555-0100"


def test_blank_name_falls_back_to_the_articles_clinic(tmp_path):
    path = tmp_path / "clinic.yml"
    path.write_text("name: ''\nlocation:\n")
    assert load_profile(path) == ClinicProfile()


def test_unknown_fields_are_refused(tmp_path):
    path = tmp_path / "clinic.yml"
    path.write_text("fax: 123\n")
    with pytest.raises(ValueError, match="fax"):
        load_profile(path)


def test_shipped_profile_loads():
    assert load_profile(PROJECT_DIR / "clinic.yml").name


def test_domain_fallback_wording_matches_an_empty_profile():
    """If the action server is unreachable, the domain's initial values speak."""
    slots = yaml.safe_load((PROJECT_DIR / "domain.yml").read_text())["slots"]
    for name, value in ClinicProfile().as_slots().items():
        assert slots[name]["initial_value"] == value
