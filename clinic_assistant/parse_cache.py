"""Rasa's message processor with the NLU parses of recent texts kept, so a text seen before is not parsed again.

Short replies ("yes", "no", "thanks", "hi") recur in almost every conversation, and parsing one runs the
whole NLU pipeline (spaCy, both featurizers, DIET, the response selector): about a third of a turn. Every
component of this pipeline reads only the message's text, and inference is deterministic, so a text always
gets the same parse: the cache is keyed by the exact text (no normalising, so entity offsets stay right) and
holds ``NLU_CACHE_SIZE`` texts, least recently used first out. It lives in the processor, so a new model
gets an empty one.
"""

import copy
from collections import OrderedDict
from typing import Any, Dict, Tuple

from rasa.core.channels.channel import UserMessage
from rasa.core.processor import MessageProcessor
from rasa.shared.core.trackers import DialogueStateTracker

from clinic_assistant import settings

ParseKey = Tuple[str, bool]


class ParseCache:
    """A bounded map of parses; each is copied in and out, as Rasa's turn changes the parse it is given."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._parses: OrderedDict[ParseKey, Dict[str, Any]] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: ParseKey) -> Any:
        parse = self._parses.get(key)
        if parse is None:
            self.misses += 1
            return None
        self.hits += 1
        self._parses.move_to_end(key)
        return copy.deepcopy(parse)

    def put(self, key: ParseKey, parse: Dict[str, Any]) -> None:
        if self.size <= 0:
            return
        self._parses[key] = copy.deepcopy(parse)
        self._parses.move_to_end(key)
        while len(self._parses) > self.size:
            self._parses.popitem(last=False)


class CachingMessageProcessor(MessageProcessor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parse_cache = ParseCache(settings.NLU_CACHE_SIZE)

    def _parse_message_with_graph(
        self, message: UserMessage, tracker: DialogueStateTracker, only_output_properties: bool = True
    ) -> Dict[str, Any]:
        key = (message.text or "", only_output_properties)
        parse = self.parse_cache.get(key)
        if parse is None:
            parse = super()._parse_message_with_graph(message, tracker, only_output_properties)
            self.parse_cache.put(key, parse)
        return parse
