"""The trained model on phrasings it never saw, scored by Rasa's own reports."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from clinic_assistant.processes import process_environment
from clinic_assistant.settings import PROJECT_DIR
from tests.conftest import TESTS_DIR


@pytest.fixture(scope="module")
def reports(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("nlu-report")
    subprocess.run(
        [
            sys.executable, "-m", "rasa", "test", "nlu",
            "--nlu", str(TESTS_DIR / "nlu" / "heldout.yml"),
            "--model", str(trained_model), "--out", str(out),
        ],
        cwd=PROJECT_DIR, env=process_environment(), check=True, capture_output=True, timeout=900,
    )
    return out


def test_intent_macro_f1_at_least_095(reports: Path):
    report = json.loads((reports / "intent_report.json").read_text())
    assert report["macro avg"]["f1-score"] >= 0.95, _worst(report)


def test_response_selection_accuracy_at_least_095(reports: Path):
    report = json.loads((reports / "response_selection_report.json").read_text())
    assert report["accuracy"] >= 0.95, _worst(report)


def _worst(report: dict) -> list:
    rows = [(k, v["f1-score"]) for k, v in report.items() if isinstance(v, dict) and "f1-score" in v]
    return sorted(rows, key=lambda row: row[1])[:8]
