"""A bounded cache of NLU parses, so a text seen before is not parsed again.

Short replies ("yes", "no", "thanks", "hi") recur in almost every conversation, and parsing one runs the
whole NLU pipeline (spaCy, both featurizers, DIET, the response selector): about a third of a turn. Every
component of this pipeline reads only the message's text, and inference is deterministic, so a text always
gets the same parse: the cache is keyed by the exact text (no normalising, so entity offsets stay right) and
holds ``NLU_CACHE_SIZE`` texts, least recently used first out. The message processor
(``message_processor.py``) owns one, so a new model gets an empty one.
"""

import copy
from collections import OrderedDict
from typing import Any, Dict, Hashable


class ParseCache:
    """A bounded map of parses; each is copied in and out, as Rasa's turn changes the parse it is given."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._parses: OrderedDict[Hashable, Dict[str, Any]] = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key: Hashable) -> Any:
        parse = self._parses.get(key)
        if parse is None:
            self.misses += 1
            return None
        self.hits += 1
        self._parses.move_to_end(key)
        return copy.deepcopy(parse)

    def put(self, key: Hashable, parse: Dict[str, Any]) -> None:
        if self.size <= 0:
            return
        self._parses[key] = copy.deepcopy(parse)
        self._parses.move_to_end(key)
        while len(self._parses) > self.size:
            self._parses.popitem(last=False)
