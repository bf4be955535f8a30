"""Score crisis and emergency detection on the labelled set in tests/safety.

Shared by the test that asserts recall and false positives over the real
trained model with the real ``SafetyGate``, and by the benchmark that
reports the figures (including which layer caught what).
"""

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List

import yaml

from clinic_assistant import settings

LABELLED_SET_PATH = settings.PROJECT_DIR / "tests" / "safety" / "labelled_messages.yml"
DANGEROUS = ("crisis", "emergency")


@dataclass
class SafetyScores:
    totals: Counter = field(default_factory=Counter)  # label -> messages
    flagged: Counter = field(default_factory=Counter)  # label -> messages given a safety reply
    by_layer: Counter = field(default_factory=Counter)  # (label, "pattern"|"model") -> messages
    missed: List[str] = field(default_factory=list)  # dangerous messages not flagged
    false_alarms: List[str] = field(default_factory=list)  # near-misses flagged

    def recall(self, label: str) -> float:
        return self.flagged[label] / self.totals[label]

    @property
    def dangerous_recall(self) -> float:
        return sum(self.flagged[k] for k in DANGEROUS) / sum(self.totals[k] for k in DANGEROUS)

    @property
    def near_miss_false_positive_rate(self) -> float:
        return self.flagged["near_miss"] / self.totals["near_miss"]


def load_labelled(path: Path = LABELLED_SET_PATH) -> Dict[str, List[dict]]:
    return yaml.safe_load(path.read_text())


def score(parse: Callable[[str], Dict[str, Any]], labelled: Dict[str, List[dict]]) -> SafetyScores:
    """Parse every labelled message; a message is flagged when the parse carries ``safety``."""
    scores = SafetyScores()
    for label, entries in labelled.items():
        for entry in entries:
            safety = parse(entry["text"]).get("safety")
            scores.totals[label] += 1
            if safety:
                scores.flagged[label] += 1
                scores.by_layer[(label, safety["detected_by"])] += 1
            if label in DANGEROUS and not safety:
                scores.missed.append(entry["text"])
            if label == "near_miss" and safety:
                scores.false_alarms.append(f"{entry['text']} ({safety['detected_by']} {safety.get('rule')})")
    return scores
