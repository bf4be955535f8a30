"""The REST channel for the clinic's trusted integrations, at ``/webhooks/rest/webhook``.

Rasa 3.6's ``RestInput`` takes anyone's request, files it under whatever ``sender`` it names (so a caller who
learns a widget session id or an SMS conversation id can read and continue that conversation), accepts any
content type (so any web page can post blind messages from a visitor's browser), lets the caller claim any
channel, and answers a turn that failed with an empty 200. Here:

- every request carries ``Authorization: Bearer <REST_API_TOKEN>``;
- conversations live in their own namespace (``rest-<sender>``), apart from the widget's and SMS ones;
- only ``application/json`` bodies of the documented shape, with well-formed text of bounded size;
- messages are rate limited per conversation and per client address;
- every problem gets a clear 4xx with a JSON ``error``, a failed turn a 503, never an empty 200.
"""

import hmac
import logging
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request

from clinic_assistant import settings
from clinic_assistant.channels.input_checks import (
    MAX_BODY_BYTES,
    MAX_MESSAGE_LENGTH,
    metadata_problem,
    sender_problem,
    text_problem,
)
from clinic_assistant.channels.rate_limits import RateLimiter, client_address
from clinic_assistant.local_secrets import local_secret

logger = logging.getLogger(__name__)

# Prefix of every REST conversation id: widget ids are bare hex and SMS ids start "sms-", so no REST caller
# can address either.
CONVERSATION_PREFIX = "rest-"
JSON_TYPE = "application/json"
SHAPE = '{"sender": "...", "message": "...", "metadata": {...}}'


class Refused(Exception):
    """A request answered with ``status`` and a JSON ``error`` saying what is wrong."""

    def __init__(self, status: int, message: str, headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or {}


def conversation_id(sender: str) -> str:
    return CONVERSATION_PREFIX + sender


class ValidatedRestInput(InputChannel):
    """One small connector: authenticate, check, limit, then hand the message to Rasa."""

    def __init__(self) -> None:
        self.token = local_secret("rest-api-token", settings.REST_API_TOKEN)
        self.per_conversation = RateLimiter(settings.REST_MAX_MESSAGES_PER_MINUTE)
        self.per_address = RateLimiter(settings.REST_MAX_MESSAGES_PER_ADDRESS_PER_MINUTE)

    @classmethod
    def name(cls) -> str:
        return "rest"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> InputChannel:
        return cls()  # everything comes from settings (the token from the environment or var/)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        blueprint = Blueprint("rest_webhook", __name__)

        @blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> response.HTTPResponse:
            return response.json({"status": "ok"})

        @blueprint.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> response.HTTPResponse:
            try:
                sender, text, metadata = self._accepted(request)
            except Refused as refusal:
                return response.json({"error": str(refusal)}, status=refusal.status, headers=refusal.headers)
            collector = CollectingOutputChannel()
            message = UserMessage(
                text, collector, conversation_id(sender), input_channel=self.name(), metadata=metadata
            )
            try:
                await on_new_message(message)
            except Exception:
                logger.exception("A REST turn failed")
                return response.json({"error": "The assistant could not answer just now. Try again."}, status=503)
            return response.json([{**m, "recipient_id": sender} for m in collector.messages])

        return blueprint

    def _accepted(self, request: Request) -> Tuple[str, str, Optional[Dict[str, Any]]]:
        """The sender, text and metadata of an acceptable request; raises ``Refused`` otherwise."""
        self._authenticate(request)
        body = _json_object(request)
        problem = sender_problem(body.get("sender"))
        if problem:
            raise Refused(400, problem)
        text = body.get("message")
        if isinstance(text, str) and len(text) > MAX_MESSAGE_LENGTH:
            raise Refused(413, text_problem(text, "message") or "")
        problem = text_problem(text, "message") or metadata_problem(body.get("metadata"))
        if problem:
            raise Refused(400, problem)
        self._limit(body["sender"], client_address(request))
        return body["sender"], text, body.get("metadata")

    def _authenticate(self, request: Request) -> None:
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        given = token.strip().encode("utf-8", "surrogateescape")
        if scheme.lower() != "bearer" or not hmac.compare_digest(given, self.token):
            raise Refused(401, "A valid bearer token is required.", {"WWW-Authenticate": 'Bearer realm="rest"'})

    def _limit(self, sender: str, address: str) -> None:
        if not self.per_address.allow(address) or not self.per_conversation.allow(sender):
            raise Refused(429, "Too many messages; wait a minute and try again.", {"Retry-After": "60"})


def _json_object(request: Request) -> Dict[str, Any]:
    if (request.content_type or "").split(";")[0].strip().lower() != JSON_TYPE:
        raise Refused(415, f"The body must be {JSON_TYPE}: {SHAPE}.")
    if len(request.body) > MAX_BODY_BYTES:
        raise Refused(413, f"The body is {len(request.body)} bytes; at most {MAX_BODY_BYTES} are accepted.")
    try:
        body = request.json
    except Exception as error:  # Sanic raises its own errors for bodies that are not JSON (or nest too deep)
        raise Refused(400, "The body must be JSON.") from error
    if not isinstance(body, dict):
        raise Refused(400, f"The body must be a JSON object: {SHAPE}.")
    return body
