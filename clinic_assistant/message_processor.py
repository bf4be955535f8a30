"""The Rasa server's message processor: NLU off the event loop, parses cached, visitors' slash commands read as text.

- **Off the event loop.** Rasa 3.6 runs the whole NLU pipeline inside the event loop, so one long message
  stalls every other conversation on the server (and its readiness route). Parses run on one worker thread
  instead, in arrival order as before; TensorFlow and spaCy release the interpreter while they compute.
- **Bounded cost.** Long messages are read passage by passage and runs without a space in pieces
  (``message_reading.py``): parts of the pipeline hold the interpreter, and 5,000 punctuation marks or emoji without
  a space once kept every other conversation waiting for five seconds.
- **Cached** (``parse_cache.ParseCache``): a text seen before is not parsed again.
- **Slash commands.** Rasa reads a message that starts with "/" as an intent with entities ("/crisis",
  '/ask{"more_response": ...}'), so a visitor could fill slots or pose as the safety layer. From the visitor
  channels such a message is read as plain text, unless it is exactly the payload of a button the assistant
  offered in its last reply. The trusted REST channel keeps Rasa's behaviour.
"""

import asyncio
import copy
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Optional, Set

from rasa.core.channels.channel import UserMessage
from rasa.core.processor import MessageProcessor
from rasa.shared.core.events import BotUttered, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from clinic_assistant import settings
from clinic_assistant.message_reading import combine, in_pieces, passages
from clinic_assistant.parse_cache import ParseCache

# The channels the public writes in; their text is never read as an intent.
VISITOR_CHANNELS = {"socketio", "twilio_sms"}
INTENT_PREFIX = "/"


class ClinicMessageProcessor(MessageProcessor):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.parse_cache = ParseCache(settings.NLU_CACHE_SIZE)
        # One thread: parses keep their order and the pipeline's components are never used concurrently.
        self.nlu_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nlu")
        # The pipeline loads some of its tables on first use, holding the interpreter: do it now, not on a visitor.
        self._parse_text(UserMessage("hello"), "hello", DialogueStateTracker.from_events("warm-up", []), True)

    async def parse_message(
        self, message: UserMessage, tracker: Optional[DialogueStateTracker] = None, only_output_properties: bool = True
    ) -> Dict[str, Any]:
        if self.http_interpreter:
            return await super().parse_message(message, tracker, only_output_properties)
        tracker = tracker or DialogueStateTracker.from_events(message.sender_id, [])
        loop = asyncio.get_running_loop()
        parse_data = await loop.run_in_executor(
            self.nlu_thread, self._parse_message_with_graph, message, tracker, only_output_properties
        )
        self._update_full_retrieval_intent(parse_data)
        self._check_for_unseen_features(parse_data)
        return parse_data

    def _parse_message_with_graph(
        self, message: UserMessage, tracker: DialogueStateTracker, only_output_properties: bool = True
    ) -> Dict[str, Any]:
        text = message.text or ""
        literal = _read_as_text(message, tracker)
        key = (text, only_output_properties, literal)
        parse = self.parse_cache.get(key)
        if parse is None:
            read = in_pieces(text.lstrip(INTENT_PREFIX) if literal else text)
            parse = combine([
                self._parse_text(message, passage, tracker, only_output_properties) for passage in passages(read)
            ])
            parse["text"] = text
            self.parse_cache.put(key, parse)
        return parse

    def _parse_text(
        self, message: UserMessage, text: str, tracker: DialogueStateTracker, only_output_properties: bool
    ) -> Dict[str, Any]:
        as_written = copy.copy(message)
        as_written.text = text
        return super()._parse_message_with_graph(as_written, tracker, only_output_properties)


def _read_as_text(message: UserMessage, tracker: DialogueStateTracker) -> bool:
    """Whether a message that looks like a slash command must be read as the words it holds."""
    text = message.text or ""
    if not text.startswith(INTENT_PREFIX) or message.input_channel not in VISITOR_CHANNELS:
        return False
    return text not in offered_payloads(tracker)


def offered_payloads(tracker: DialogueStateTracker) -> Set[str]:
    """The payloads of the buttons in the assistant's last reply (its messages since the visitor last wrote)."""
    payloads: Set[str] = set()
    for event in reversed(tracker.events):
        if isinstance(event, UserUttered):
            break
        if isinstance(event, BotUttered):
            payloads.update(str(b.get("payload")) for b in (event.data or {}).get("buttons") or [])
    return payloads
