"""Rasa's REST channel, with the request checked before anything reaches the bot.

Rasa 3.6's ``RestInput`` answers a JSON array with a 500, files every message
without a ``sender`` under one shared ``default`` conversation (mixing
strangers' chats), silently drops non-text messages, and lets the caller
claim any channel name. This channel refuses such requests with a clear 4xx.
"""

from typing import Any, Dict, Optional

from rasa.core.channels.rest import RestInput
from sanic.exceptions import InvalidUsage as BadRequest
from sanic.exceptions import PayloadTooLarge
from sanic.request import Request

# Rasa's SQL tracker store keeps sender ids in a 255-character column.
MAX_SENDER_LENGTH = 255
# Far beyond any real question; longer texts are refused, not silently cut.
MAX_MESSAGE_LENGTH = 5000


def _body(request: Request) -> Dict[str, Any]:
    try:
        body = request.json
    except Exception as error:  # Sanic raises its own BadRequest subclasses here
        raise BadRequest("The body must be JSON.") from error
    if not isinstance(body, dict):
        raise BadRequest('The body must be a JSON object: {"sender": "...", "message": "..."}.')
    return body


class ValidatedRestInput(RestInput):
    """The ``rest`` channel at ``/webhooks/rest/webhook``, with input checks."""

    async def _extract_sender(self, req: Request) -> Optional[str]:
        sender = _body(req).get("sender")
        if not isinstance(sender, str) or not sender.strip():
            raise BadRequest('"sender" must be a non-empty string identifying the conversation.')
        if len(sender) > MAX_SENDER_LENGTH:
            raise BadRequest(f'"sender" must be at most {MAX_SENDER_LENGTH} characters.')
        return sender

    def _extract_message(self, req: Request) -> Optional[str]:
        message = _body(req).get("message")
        if not isinstance(message, str):
            raise BadRequest('"message" must be a string.')
        if len(message) > MAX_MESSAGE_LENGTH:
            raise PayloadTooLarge(
                f'"message" is {len(message)} characters; at most {MAX_MESSAGE_LENGTH} are accepted.'
            )
        return message

    def _extract_input_channel(self, req: Request) -> str:
        # The caller may not pose as another channel (e.g. SMS).
        return self.name()

    def get_metadata(self, request: Request) -> Optional[Dict[str, Any]]:
        metadata = _body(request).get("metadata")
        if metadata is not None and not isinstance(metadata, dict):
            raise BadRequest('"metadata" must be a JSON object when given.')
        return metadata
