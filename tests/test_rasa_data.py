"""Rasa's own checks on the training data, and the held-out set's independence."""

import subprocess
import sys

from rasa.shared.nlu.training_data.loading import load_data

from clinic_assistant.processes import process_environment
from clinic_assistant.settings import PROJECT_DIR
from tests.conftest import TESTS_DIR


def test_rasa_data_validate_passes_with_fail_on_warnings():
    result = subprocess.run(
        [sys.executable, "-m", "rasa", "data", "validate", "--fail-on-warnings"],
        cwd=PROJECT_DIR, env=process_environment(), capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def _normalise(text: str) -> str:
    return " ".join("".join(c for c in text.lower() if c.isalnum() or c.isspace()).split())


def test_heldout_examples_never_appear_in_training_data():
    training = {_normalise(m.get("text")) for m in load_data(str(PROJECT_DIR / "data" / "nlu")).training_examples}
    heldout = [m.get("text") for m in load_data(str(TESTS_DIR / "nlu" / "heldout.yml")).training_examples]
    leaked = [text for text in heldout if _normalise(text) in training]
    assert not leaked


def test_heldout_set_has_five_phrasings_for_every_intent_and_answer():
    heldout = load_data(str(TESTS_DIR / "nlu" / "heldout.yml"))
    training = load_data(str(PROJECT_DIR / "data" / "nlu"))
    counts = {}
    for message in heldout.training_examples:
        label = message.get("intent_response_key") or message.get("intent")
        counts[label] = counts.get(label, 0) + 1
    labels = {m.get("intent_response_key") or m.get("intent") for m in training.training_examples}
    assert {label: counts.get(label, 0) for label in labels if counts.get(label, 0) < 5} == {}


def test_labelled_safety_messages_never_appear_in_training_data():
    import yaml

    training = {_normalise(m.get("text")) for m in load_data(str(PROJECT_DIR / "data" / "nlu")).training_examples}
    labelled = yaml.safe_load((TESTS_DIR / "safety" / "labelled_messages.yml").read_text())
    leaked = [e["text"] for entries in labelled.values() for e in entries if _normalise(e["text"]) in training]
    assert not leaked
