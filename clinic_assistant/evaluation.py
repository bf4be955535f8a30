"""Score a trained model on the held-out NLU set with ``rasa test nlu``.

Shared by the test that asserts the scores and the benchmark that reports them.
"""

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from clinic_assistant import settings
from clinic_assistant.processes import process_environment


@dataclass(frozen=True)
class NluScores:
    intent_macro_f1: float
    intent_accuracy: float
    response_accuracy: float
    response_macro_f1: float
    report_dir: Path


def evaluate_nlu(model: Path, out: Path, heldout: Path = settings.HELDOUT_NLU_PATH) -> NluScores:
    """Run Rasa's NLU evaluation into ``out`` and read its report files."""
    subprocess.run(
        [sys.executable, "-m", "rasa", "test", "nlu", "--nlu", str(heldout), "--model", str(model), "--out", str(out)],
        cwd=settings.PROJECT_DIR, env=process_environment(), check=True, capture_output=True, timeout=900,
    )
    intents = json.loads((out / "intent_report.json").read_text())
    responses = json.loads((out / "response_selection_report.json").read_text())
    return NluScores(
        intent_macro_f1=intents["macro avg"]["f1-score"],
        intent_accuracy=intents["accuracy"],
        response_accuracy=responses["accuracy"],
        response_macro_f1=responses["macro avg"]["f1-score"],
        report_dir=out,
    )


def weakest_labels(report_file: Path, count: int = 8) -> list:
    """The labels with the lowest F1, for a readable failure message."""
    report = json.loads(report_file.read_text())
    rows = [(k, round(v["f1-score"], 3)) for k, v in report.items() if isinstance(v, dict) and "f1-score" in v]
    return sorted(rows, key=lambda row: row[1])[:count]
