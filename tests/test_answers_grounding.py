"""Every answer is tied to the article, invents nothing, and fits in two texts."""

import re

import pytest
import yaml

from clinic_assistant.answers import CONSULTATION_FORM, load_answers
from clinic_assistant.article import sections
from clinic_assistant.clinic_profile import ClinicProfile
from clinic_assistant.consultation_details import summary
from clinic_assistant.settings import PROJECT_DIR

ANSWERS = load_answers()
# Answers about what the article does NOT say, or built from the clinic profile.
NOT_FACTUAL = {"utter_clinic/contact", "utter_clinic/hours"}
FACTUAL = [a for a in ANSWERS.values() if not a.key.startswith("limits/") and a.response not in NOT_FACTUAL]
FULL_PROFILE = ClinicProfile(
    phone="(850) 555-0100", website="https://clinic.example/consult",
    address="123 Harbor Blvd, Destin, FL", hours="Monday to Friday, 8am to 5pm",
)
SMS_BUDGET = 320
LONGEST_FILLED_VALUES = {
    "contact": "firstname.lastname@example-provider.com",
    "reference": "CR-7K3P",
    "consult_name": "x" * 40,
    "consult_phone": "+442079460958",
    "consult_summary": summary({
        "consult_name": "x" * 200, "consult_phone": "+442079460958", "consult_email": "y" * 60 + "@example.com",
        "consult_help_with": "z" * 2000, "consult_best_times": "w" * 2000, "consult_consent": True,
    }),
}


def test_the_article_has_its_sections():
    assert "What is CRPS?" in sections()
    assert "Benefits of Ketamine for CRPS" in sections()


@pytest.mark.parametrize("answer", FACTUAL, ids=lambda a: a.key)
def test_factual_answer_names_an_existing_section(answer):
    assert answer.sections, f"{answer.key} names no article section"
    assert set(answer.sections) <= set(sections()), answer.sections


@pytest.mark.parametrize("answer", list(ANSWERS.values()), ids=lambda a: a.key)
def test_named_sections_exist(answer):
    assert set(answer.sections) <= set(sections())


@pytest.mark.parametrize("answer", list(ANSWERS.values()), ids=lambda a: a.key)
def test_every_number_in_an_answer_is_in_its_sections(answer):
    source = " ".join(sections()[name] for name in answer.sections)
    for number in re.findall(r"\d+", answer.text):
        assert number in source, f"{answer.key} says {number}, its sections do not"


@pytest.mark.parametrize("answer", list(ANSWERS.values()), ids=lambda a: a.key)
def test_no_suicide_statistic_is_repeated(answer):
    assert "suicid" not in answer.text.lower()
    assert "49" not in answer.text


def _domain_response_texts():
    domain = yaml.safe_load((PROJECT_DIR / "domain.yml").read_text())
    for name, variants in domain["responses"].items():
        for variant in variants:
            yield name, variant.get("text", "")
    for answer in ANSWERS.values():
        yield answer.response, answer.text


@pytest.mark.parametrize("profile", [ClinicProfile(), FULL_PROFILE], ids=["empty-profile", "full-profile"])
def test_every_reply_fits_two_sms_with_profile_filled_in(profile):
    # the longest values actions and forms fill in
    slots = {**profile.as_slots(), **LONGEST_FILLED_VALUES}
    too_long = {}
    for name, text in _domain_response_texts():
        rendered = text.format(**slots)
        if len(rendered) > SMS_BUDGET:
            too_long[name] = len(rendered)
    assert too_long == {}


@pytest.mark.parametrize("answer", [a for a in ANSWERS.values() if a.more], ids=lambda a: a.key)
def test_offered_answers_exist(answer):
    assert answer.more in ANSWERS or answer.more == CONSULTATION_FORM


@pytest.mark.parametrize(
    "key", ["treatment/medications", "treatment/mirror_therapy", "treatment/physical_therapy",
            "treatment/surgery", "treatment/spinal_cord_stimulator", "treatment/overview",
            "ketamine/overview", "ketamine/vs_opioids"],
)
def test_treatment_answers_carry_a_general_information_disclaimer(key):
    assert "General information only" in ANSWERS[f"utter_{key}"].text


SHARED_ARTICLE = PROJECT_DIR.parent / "shared" / "article.txt"


@pytest.mark.skipif(not SHARED_ARTICLE.exists(), reason="no clinic-provided article beside this checkout")
def test_the_article_copy_matches_the_clinics_article():
    assert (PROJECT_DIR / "content" / "article.txt").read_bytes() == SHARED_ARTICLE.read_bytes()
