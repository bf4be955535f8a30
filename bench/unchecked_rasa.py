"""The Rasa server as ``clinic_assistant.rasa_server`` starts it, but with the channels' input checks, credential
and rate limits taken out: the "before" side of the benchmark that prices those checks. Never used to serve.
"""

import os
from typing import Any, Optional, Tuple

import rasa.core.agent
from rasa.__main__ import main

from clinic_assistant.channels import rest, secure_socketio
from clinic_assistant.message_processor import ClinicMessageProcessor
from clinic_assistant.rasa_server import REQUEST_MAX_BYTES


def _accepted_unchecked(self: rest.ValidatedRestInput, request: Any) -> Tuple[str, str, Optional[dict]]:
    body = request.json  # what Rasa's own REST channel does: take the fields as they come
    return body["sender"], body["message"], body.get("metadata")


def _unchecked(session: Any, data: Any) -> None:
    return None


if __name__ == "__main__":
    os.environ.setdefault("SANIC_REQUEST_MAX_SIZE", str(REQUEST_MAX_BYTES))
    rest.ValidatedRestInput._accepted = _accepted_unchecked  # type: ignore[method-assign]
    secure_socketio._problem = _unchecked
    secure_socketio.SecureSocketIOInput._limited = lambda self, session: None  # type: ignore[method-assign]
    rasa.core.agent.MessageProcessor = ClinicMessageProcessor
    main()
