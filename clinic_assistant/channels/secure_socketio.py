"""The website widget's socket.io channel, without the holes of Rasa 3.6's.

Rasa's ``SocketIOInput`` files messages under whatever ``session_id`` the
browser sends (so anyone who learns another visitor's id reads their
replies), accepts any origin, and calls python-socketio's ``enter_room``
without ``await`` (on python-socketio >= 5.10 replies then never reach a
persisted session). Here:

- the server issues each visitor a signed session token; a valid token
  resumes its conversation while the conversation has been active within
  ``WIDGET_SESSION_IDLE_HOURS`` and the visitor has not cleared it;
  anything else starts a fresh one;
- the conversation id lives in the server-side socket session, never taken
  from a message;
- only the configured origins may connect;
- messages are checked (shape, size, well-formed text) and rate limited per
  conversation and per client address, so reconnecting resets nothing;
  each problem is answered with an ``error`` event, never an exception.
"""

import logging
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, Optional

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from rasa.shared.core.events import ConversationPaused
from sanic import Blueprint, response
from sanic.request import Request
from socketio import AsyncServer

from clinic_assistant import settings
from clinic_assistant.channels.input_checks import MAX_MESSAGE_LENGTH, text_problem
from clinic_assistant.channels.rate_limits import RateLimiter, client_address
from clinic_assistant.channels.session_tokens import SessionTokens, VerifiedToken
from clinic_assistant.local_secrets import local_secret

if TYPE_CHECKING:
    from rasa.core.agent import Agent

logger = logging.getLogger(__name__)

RATE_LIMIT_NOTICE = "You're sending messages faster than I can answer. Please wait a moment and try again."
SESSION_LIMIT_NOTICE = "Too many new conversations from this connection. Please wait a minute and try again."
CONNECTION_LIMIT_NOTICE = "Too many connections from this address. Please wait a minute."
# Marks the pause that "Clear chat" leaves in the conversation it ends (staff see why it stopped).
CLEARED_BY_VISITOR = {"reason": "cleared by the visitor"}


class SecureSocketIOInput(SocketIOInput):
    """The ``socketio`` channel with server-issued sessions, allowed origins, input checks and limits."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Kept in var/ when not in the environment, so tokens survive restarts.
        self.tokens = SessionTokens(local_secret("widget-session-secret", settings.WIDGET_SESSION_SECRET))
        self.idle_seconds = settings.WIDGET_SESSION_IDLE_HOURS * 3600
        self.per_conversation = RateLimiter(settings.WIDGET_MAX_MESSAGES_PER_MINUTE)
        self.per_address = RateLimiter(settings.WIDGET_MAX_MESSAGES_PER_ADDRESS_PER_MINUTE)
        self.sessions_per_address = RateLimiter(settings.WIDGET_MAX_SESSIONS_PER_ADDRESS_PER_MINUTE)
        self.connections_per_address = RateLimiter(settings.WIDGET_MAX_CONNECTIONS_PER_ADDRESS_PER_MINUTE)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        sio = AsyncServer(async_mode="sanic", cors_allowed_origins=settings.WIDGET_ALLOWED_ORIGINS)
        blueprint = SocketBlueprint(sio, self.socketio_path, "socketio_webhook", __name__)
        self.sio = sio
        namespace = self.namespace

        async def refuse(sid: str, notice: str) -> None:
            await sio.emit("error", {"message": notice}, room=sid, namespace=namespace)

        @blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> response.HTTPResponse:
            return response.json({"status": "ok"})

        @sio.on("connect", namespace=namespace)
        async def connect(sid: str, environ: Dict[str, Any], auth: Any = None) -> None:
            request = environ.get("sanic.request")
            address = client_address(request)
            if not self.connections_per_address.allow(address):
                raise ConnectionRefusedError(CONNECTION_LIMIT_NOTICE)
            agent = getattr(request.app.ctx, "agent", None) if request is not None else None
            await sio.save_session(sid, {"address": address, "agent": agent}, namespace=namespace)

        @sio.on("session_request", namespace=namespace)
        async def session_request(sid: str, data: Any = None) -> None:
            session = await sio.get_session(sid, namespace=namespace)
            fields = data if isinstance(data, dict) else {}
            await self._revoke(session.get("agent"), self.tokens.verify(fields.get("revoke_token")))
            verified = self.tokens.verify(fields.get("session_token"))
            if await self._resumable(session.get("agent"), verified):
                session_id = verified.session_id  # type: ignore[union-attr]
            elif self.sessions_per_address.allow(session["address"]):
                session_id = self.tokens.new_session_id()
            else:
                await refuse(sid, SESSION_LIMIT_NOTICE)
                return
            await sio.save_session(sid, {**session, "session_id": session_id}, namespace=namespace)
            await sio.enter_room(sid, session_id, namespace=namespace)
            confirm = {"session_id": session_id, "session_token": self.tokens.sign(session_id)}
            await sio.emit("session_confirm", confirm, room=sid, namespace=namespace)

        @sio.on(self.user_message_evt, namespace=namespace)
        async def handle_message(sid: str, data: Any = None) -> None:
            session = await sio.get_session(sid, namespace=namespace)
            problem = _problem(session, data) or self._limited(session)
            if problem:
                await refuse(sid, problem)
                return
            output = SocketIOOutput(sio, self.bot_message_evt)
            await on_new_message(
                UserMessage(data["message"], output, session["session_id"], input_channel=self.name())
            )

        return blueprint

    def _limited(self, session: Dict[str, Any]) -> Optional[str]:
        if not self.per_address.allow(session["address"]) or not self.per_conversation.allow(session["session_id"]):
            return RATE_LIMIT_NOTICE
        return None

    async def _resumable(self, agent: Optional["Agent"], token: Optional[VerifiedToken]) -> bool:
        """Whether ``token``'s conversation may go on: not cleared, and active within the idle time."""
        if token is None:
            return False
        tracker = await agent.tracker_store.retrieve(token.session_id) if agent else None
        if tracker is not None and tracker.is_paused():
            return False
        last_active = max([token.issued_at] + ([tracker.events[-1].timestamp] if tracker and tracker.events else []))
        return time.time() - last_active <= self.idle_seconds

    async def _revoke(self, agent: Optional["Agent"], token: Optional[VerifiedToken]) -> None:
        """End the conversation a cleared chat leaves behind, so its token resumes nothing."""
        if token is None or agent is None:
            return
        async with agent.lock_store.lock(token.session_id):
            tracker = await agent.tracker_store.get_or_create_tracker(token.session_id, append_action_listen=False)
            if tracker.is_paused():
                return
            tracker.update(ConversationPaused(metadata=CLEARED_BY_VISITOR))
            await agent.tracker_store.save(tracker)


def _problem(session: Optional[Dict[str, Any]], data: Any) -> Optional[str]:
    if not session or "session_id" not in session:
        return "Send session_request first."
    if not isinstance(data, dict) or not isinstance(data.get("message"), str):
        return 'A message must be an object with a "message" string.'
    if len(data["message"]) > MAX_MESSAGE_LENGTH:
        return f"Messages are limited to {MAX_MESSAGE_LENGTH} characters."
    return text_problem(data["message"], "message")
