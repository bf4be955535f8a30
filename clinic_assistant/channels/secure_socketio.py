"""The website widget's socket.io channel, without the holes of Rasa 3.6's.

Rasa's ``SocketIOInput`` files messages under whatever ``session_id`` the
browser sends (so anyone who learns another visitor's id reads their
replies), accepts any origin, and calls python-socketio's ``enter_room``
without ``await`` (on python-socketio >= 5.10 replies then never reach a
persisted session). Here:

- the server issues each visitor a signed session token; a valid token
  resumes its conversation, anything else starts a fresh one;
- the conversation id lives in the server-side socket session, never taken
  from a message;
- only the configured origins may connect;
- messages are checked (shape, size) and rate limited, each problem
  answered with an ``error`` event, never an exception.
"""

import logging
import time
from collections import deque
from typing import Any, Awaitable, Callable, Deque, Dict, Optional

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from sanic import Blueprint, response
from sanic.request import Request
from socketio import AsyncServer

from clinic_assistant import settings
from clinic_assistant.channels.rest import MAX_MESSAGE_LENGTH
from clinic_assistant.channels.session_tokens import SessionTokens
from clinic_assistant.local_secrets import local_secret

logger = logging.getLogger(__name__)

RATE_WINDOW_SECONDS = 60.0
RATE_LIMIT_NOTICE = "You're sending messages faster than I can answer. Please wait a moment and try again."


class SecureSocketIOInput(SocketIOInput):
    """The ``socketio`` channel with server-issued sessions, allowed origins and input checks."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Kept in var/ when not in the environment, so tokens survive restarts.
        self.tokens = SessionTokens(local_secret("widget-session-secret", settings.WIDGET_SESSION_SECRET))
        self.limit = settings.WIDGET_MAX_MESSAGES_PER_MINUTE

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        sio = AsyncServer(async_mode="sanic", cors_allowed_origins=settings.WIDGET_ALLOWED_ORIGINS)
        blueprint = SocketBlueprint(sio, self.socketio_path, "socketio_webhook", __name__)
        self.sio = sio

        @blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> response.HTTPResponse:
            return response.json({"status": "ok"})

        @sio.on("session_request", namespace=self.namespace)
        async def session_request(sid: str, data: Any = None) -> None:
            token = data.get("session_token") if isinstance(data, dict) else None
            session_id = self.tokens.verify(token) or self.tokens.new_session_id()
            await sio.save_session(sid, {"session_id": session_id, "sent": deque()}, namespace=self.namespace)
            await sio.enter_room(sid, session_id, namespace=self.namespace)
            confirm = {"session_id": session_id, "session_token": self.tokens.sign(session_id)}
            await sio.emit("session_confirm", confirm, room=sid, namespace=self.namespace)

        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def handle_message(sid: str, data: Any = None) -> None:
            session = await sio.get_session(sid, namespace=self.namespace)
            problem = _problem(session, data) or _rate_limited(session, self.limit)
            if problem:
                await sio.emit("error", {"message": problem}, room=sid, namespace=self.namespace)
                return
            output = SocketIOOutput(sio, self.bot_message_evt)
            await on_new_message(
                UserMessage(data["message"], output, session["session_id"], input_channel=self.name())
            )

        return blueprint


def _problem(session: Optional[Dict[str, Any]], data: Any) -> Optional[str]:
    if not session or "session_id" not in session:
        return "Send session_request first."
    if not isinstance(data, dict) or not isinstance(data.get("message"), str):
        return 'A message must be an object with a "message" string.'
    if len(data["message"]) > MAX_MESSAGE_LENGTH:
        return f"Messages are limited to {MAX_MESSAGE_LENGTH} characters."
    return None


def _rate_limited(session: Dict[str, Any], limit: int) -> Optional[str]:
    sent: Deque[float] = session["sent"]
    now = time.monotonic()
    while sent and now - sent[0] > RATE_WINDOW_SECONDS:
        sent.popleft()
    if len(sent) >= limit:
        return RATE_LIMIT_NOTICE
    sent.append(now)
    return None
