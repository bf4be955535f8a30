"""Train the Rasa model only when its inputs changed.

Rasa's own fingerprinting reuses unchanged components but still spends a
minute loading and packaging; a digest of every training input lets the run
command and the tests start at once when nothing changed.
"""

import hashlib
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Iterable

from clinic_assistant import settings
from clinic_assistant.processes import process_environment

TRAINING_INPUTS = ("config.yml", "domain.yml", "data", "clinic_assistant/nlp")


def _files(paths: Iterable[str]) -> Iterable[Path]:
    for name in paths:
        path = settings.PROJECT_DIR / name
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        elif path.exists():
            yield path


def inputs_digest() -> str:
    # Rasa's version from its package metadata: importing rasa (TensorFlow included) costs seconds and 600 MB,
    # and the run command's supervisor reads the model's path from here.
    digest = hashlib.sha256(version("rasa").encode())
    for path in _files(TRAINING_INPUTS):
        digest.update(str(path.relative_to(settings.PROJECT_DIR)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def model_path() -> Path:
    return settings.MODELS_DIR / f"{settings.MODEL_NAME}.tar.gz"


def ensure_trained_model(force: bool = False) -> Path:
    """Return the model, training it first if it is missing or stale."""
    from clinic_assistant.nlp.build_model import ensure_model  # spaCy: only when training may be needed

    ensure_model()
    model = model_path()
    stamp = model.with_suffix(".digest")
    digest = inputs_digest()
    if not force and model.exists() and stamp.exists() and stamp.read_text() == digest:
        return model
    subprocess.run(
        [
            sys.executable, "-m", "rasa", "train",
            "--config", "config.yml", "--domain", "domain.yml", "--data", "data",
            "--out", str(settings.MODELS_DIR), "--fixed-model-name", settings.MODEL_NAME,
        ],
        cwd=settings.PROJECT_DIR,
        env=process_environment(),
        check=True,
    )
    stamp.write_text(digest)
    return model
