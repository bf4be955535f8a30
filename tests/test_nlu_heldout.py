"""The trained model on phrasings it never saw, scored by Rasa's own reports."""

from pathlib import Path

import pytest

from clinic_assistant.evaluation import NluScores, evaluate_nlu, weakest_labels


@pytest.fixture(scope="module")
def scores(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> NluScores:
    return evaluate_nlu(trained_model, tmp_path_factory.mktemp("nlu-report"))


def test_intent_macro_f1_at_least_095(scores: NluScores):
    assert scores.intent_macro_f1 >= 0.95, weakest_labels(scores.report_dir / "intent_report.json")


def test_response_selection_accuracy_at_least_095(scores: NluScores):
    assert scores.response_accuracy >= 0.95, weakest_labels(
        scores.report_dir / "response_selection_report.json"
    )
