"""The labelled crisis/emergency set stays large, varied and unambiguous.

It is evaluation data for the crisis detector (never training data); this
checks its shape so it cannot silently shrink or mix labels.
"""

from collections import Counter

import yaml

from tests.conftest import TESTS_DIR

LABELLED = yaml.safe_load((TESTS_DIR / "safety" / "labelled_messages.yml").read_text())
NOTES = {"plain", "indirect", "typo", "sms", "long", "negation", "idiom", "third_person", "question"}


def test_at_least_150_dangerous_and_150_near_miss_messages():
    assert len(LABELLED["crisis"]) + len(LABELLED["emergency"]) >= 150
    assert len(LABELLED["near_miss"]) >= 150


def test_every_message_is_labelled_once_with_a_known_note():
    texts = Counter(entry["text"].strip().lower() for entries in LABELLED.values() for entry in entries)
    assert [text for text, count in texts.items() if count > 1] == []
    assert {entry["note"] for entries in LABELLED.values() for entry in entries} <= NOTES


def test_the_set_is_varied():
    crisis_notes = Counter(entry["note"] for entry in LABELLED["crisis"])
    assert {"plain", "indirect", "typo", "sms", "long"} <= set(crisis_notes)
    near_miss_notes = Counter(entry["note"] for entry in LABELLED["near_miss"])
    assert {"idiom", "negation", "question"} <= set(near_miss_notes)
