"""Build the spaCy pipeline Rasa's ``SpacyNLP`` loads, without any download.

A blank English pipeline, a lookup lemmatizer whose tables come from the
``spacy-lookups-data`` package, and an entity ruler holding the article's
terms. Rebuilt only when its inputs change, so ``make run`` stays quick.
"""

import hashlib
import json
import shutil
from pathlib import Path

import spacy
from spacy.language import Language

from clinic_assistant import settings
from clinic_assistant.nlp.terms import ruler_patterns

STAMP_FILE = "build-stamp.json"


def build_pipeline() -> Language:
    """Return the clinic's English pipeline, ready to save."""
    nlp = spacy.blank("en")
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    ruler = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER"})
    nlp.initialize()  # loads the lemma lookup table from spacy-lookups-data
    ruler.add_patterns(ruler_patterns())
    nlp.meta["name"] = "en_clinic"
    nlp.meta["description"] = "Blank English + lookup lemmatizer + CRPS entity ruler"
    return nlp


def _inputs_digest() -> str:
    payload = json.dumps(
        {"patterns": ruler_patterns(), "spacy": spacy.__version__}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def ensure_model(target: Path = settings.SPACY_MODEL_DIR) -> Path:
    """Build the pipeline into ``target`` unless an identical build is there."""
    digest = _inputs_digest()
    stamp = target / STAMP_FILE
    if stamp.exists() and json.loads(stamp.read_text()).get("digest") == digest:
        return target
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    build_pipeline().to_disk(target)
    stamp.write_text(json.dumps({"digest": digest}))
    return target


if __name__ == "__main__":
    print(ensure_model())
