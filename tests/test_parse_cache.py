"""The NLU parse cache: a repeated text gets the parse the pipeline gave it, without running the pipeline."""

import uuid

from clinic_assistant.parse_cache import ParseCache

MESSAGES = [
    "yes",
    "what are the symptoms of crps type 2 in my left hand?",
    "I want to end my life",
    "my husband took all his pills and won't wake up",
    "Yes",  # another text: cached apart
]


def test_the_cache_is_bounded_least_recently_used_first_out():
    cache = ParseCache(size=2)
    cache.put(("a", True), {"text": "a"})
    cache.put(("b", True), {"text": "b"})
    assert cache.get(("a", True)) == {"text": "a"}  # "a" is now the most recent
    cache.put(("c", True), {"text": "c"})
    assert cache.get(("b", True)) is None
    assert cache.get(("a", True)) == {"text": "a"} and cache.get(("c", True)) == {"text": "c"}
    assert (cache.hits, cache.misses) == (3, 1)


def test_a_changed_parse_does_not_change_the_cache():
    cache = ParseCache(size=4)
    parse = {"intent": {"name": "affirm"}, "entities": []}
    cache.put(("yes", True), parse)
    parse["entities"].append({"entity": "x"})
    served = cache.get(("yes", True))
    served["intent"]["name"] = "deny"
    assert cache.get(("yes", True)) == {"intent": {"name": "affirm"}, "entities": []}


def test_size_zero_keeps_nothing():
    cache = ParseCache(size=0)
    cache.put(("yes", True), {"text": "yes"})
    assert cache.get(("yes", True)) is None


async def test_a_repeated_text_gets_the_same_parse_without_the_pipeline(nlu_processor, monkeypatch):
    processor = nlu_processor
    from rasa.core.channels.channel import UserMessage

    first = [await processor.parse_message(UserMessage(text)) for text in MESSAGES]
    assert first[2]["intent"]["name"] == "crisis" and first[3]["intent"]["name"] == "emergency"

    runs = []
    original = processor.graph_runner.run
    monkeypatch.setattr(processor.graph_runner, "run", lambda *a, **k: runs.append(1) or original(*a, **k))
    again = [await processor.parse_message(UserMessage(text, sender_id="another")) for text in MESSAGES]
    assert again == first
    assert runs == [], "every parse came from the cache"

    await processor.parse_message(UserMessage(f"what causes crps? {uuid.uuid4().hex}"))
    assert runs == [1], "a new text runs the pipeline"
