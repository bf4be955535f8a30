"""Crisis/emergency detection figures: the labelled set, the unseen set, the pattern layer's cost."""

import asyncio
import logging
import time
from pathlib import Path

import spacy

from clinic_assistant import settings
from clinic_assistant.nlp.safety_detector import SafetyDetector
from clinic_assistant.safety_evaluation import SafetyScores, load_labelled, score

UNSEEN_SET_PATH = settings.PROJECT_DIR / "tests" / "safety" / "unseen_messages.yml"


def _summary(scores: SafetyScores) -> dict:
    return {
        "crisis_recall": scores.recall("crisis"),
        "emergency_recall": scores.recall("emergency"),
        "near_miss_false_positive_rate": scores.near_miss_false_positive_rate,
        "messages": dict(scores.totals),
        "caught_by": {f"{label}/{layer}": n for (label, layer), n in scores.by_layer.items()},
        "missed": scores.missed,
        "false_alarms": scores.false_alarms,
    }


def pattern_microseconds(texts: list) -> float:
    """Mean time of the pattern layer per message (spaCy doc already made, as in Rasa)."""
    nlp = spacy.load(settings.SPACY_MODEL_DIR)
    docs = [nlp(text) for text in texts]
    detector = SafetyDetector()
    started = time.perf_counter()
    for doc in docs:
        detector.read(doc)
    return (time.perf_counter() - started) / len(docs) * 1e6


def safety_figures(model: Path) -> dict:
    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # one debug line per parsed message otherwise
    agent = Agent.load(str(model))
    loop = asyncio.new_event_loop()
    try:
        parse = lambda text: loop.run_until_complete(agent.parse_message(text))  # noqa: E731
        labelled = load_labelled()
        figures = {"labelled": _summary(score(parse, labelled))}
        if UNSEEN_SET_PATH.exists():
            figures["unseen"] = _summary(score(parse, load_labelled(UNSEEN_SET_PATH)))
    finally:
        loop.close()
    texts = [entry["text"] for entries in labelled.values() for entry in entries]
    figures["pattern_layer_us_per_message"] = pattern_microseconds(texts)
    return figures


def print_safety(figures: dict) -> None:
    for name in ("labelled", "unseen"):
        if name not in figures:
            continue
        f = figures[name]
        print(f"Safety ({name} set, {f['messages']}): crisis recall {f['crisis_recall']:.3f}, "
              f"emergency recall {f['emergency_recall']:.3f}, near-miss false positives "
              f"{f['near_miss_false_positive_rate']:.3f}; caught by {f['caught_by']}")
        for text in f["missed"]:
            print(f"  missed: {text}")
        for text in f["false_alarms"]:
            print(f"  false alarm: {text}")
    print(f"Pattern layer: {figures['pattern_layer_us_per_message']:.0f} µs per message")
