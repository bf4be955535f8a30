"""The Rasa server's readiness at ``GET /webhooks/readiness/``: 200 once the model is loaded and the tracker store
(and the Redis lock store, when there is one) answers, else 503 saying what is missing.

An input channel only for its route: Rasa's HTTP API, which has ``/status``, stays closed (no ``--enable-api``).
It takes no messages.
"""

from functools import partial
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Dict, Optional

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request

from clinic_assistant import readiness

if TYPE_CHECKING:
    from rasa.core.agent import Agent


class ReadinessInput(InputChannel):
    """One route: can this server take a turn now?"""

    @classmethod
    def name(cls) -> str:
        return "readiness"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> InputChannel:
        return cls()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        blueprint = Blueprint("readiness_webhook", __name__)
        blueprint.add_route(ready, "/", methods=["GET"])
        return blueprint


async def ready(request: Request) -> response.HTTPResponse:
    """200 when this server can take a turn now, else 503 with what is missing."""
    agent = getattr(request.app.ctx, "agent", None)
    if agent is None or not agent.is_ready():
        failed = {"model": "not loaded"}
    else:
        failed = await readiness.failures(store_checks(agent))
    body, status = readiness.report(failed)
    return response.json(body, status=status)


def store_checks(agent: "Agent") -> Dict[str, readiness.Check]:
    """The stores a turn needs that live outside this process (an in-memory store always answers)."""
    # Rasa wraps the configured tracker store in a FailSafeTrackerStore, which hides its errors.
    tracker_store = getattr(agent.tracker_store, "_tracker_store", agent.tracker_store)
    checks: Dict[str, readiness.Check] = {}
    if getattr(tracker_store, "engine", None) is not None:  # SQLTrackerStore
        checks["tracker store"] = partial(readiness.query, tracker_store.engine)
    if getattr(agent.lock_store, "red", None) is not None:  # RedisLockStore and AtomicRedisLockStore
        checks["lock store"] = agent.lock_store.red.ping
    return checks
