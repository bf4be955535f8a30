"""Rasa test stories: follow-ups, "more", fallbacks and limits, NLU included."""

import json
import subprocess
import sys
from pathlib import Path

from clinic_assistant.processes import process_environment
from clinic_assistant.settings import PROJECT_DIR
from tests.conftest import TESTS_DIR


def test_all_test_stories_pass(trained_model: Path, tmp_path: Path):
    result = subprocess.run(
        [
            sys.executable, "-m", "rasa", "test", "core",
            "--stories", str(TESTS_DIR / "stories"), "--model", str(trained_model),
            "--out", str(tmp_path), "--fail-on-prediction-errors",
        ],
        cwd=PROJECT_DIR, env=process_environment(), capture_output=True, text=True, timeout=900,
    )
    failed = tmp_path / "failed_test_stories.yml"
    assert result.returncode == 0, (failed.read_text() if failed.exists() else result.stderr[-4000:])
    report = json.loads((tmp_path / "story_report.json").read_text())
    assert report["conversation_accuracy"]["accuracy"] == 1.0
