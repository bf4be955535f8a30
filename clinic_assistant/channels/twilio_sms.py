"""The SMS channel: Twilio's messaging webhook, verified, at ``/webhooks/twilio_sms/webhook``.

Rasa 3.6's own Twilio channel takes any POST as a text from whatever number it names, sends
with a blocking client inside the event loop, drops photos silently and texts buttons as
separate messages with their payloads. Here every request must carry a valid
``X-Twilio-Signature`` for the URL Twilio was configured with; the texting itself (keywords,
consent, numbered choices, replies) is ``clinic_assistant.sms.texting``.
"""

import logging
from typing import Any, Awaitable, Callable, Dict, Optional
from urllib.parse import parse_qsl

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from twilio.request_validator import RequestValidator

from clinic_assistant import settings
from clinic_assistant.contact import parse_phone
from clinic_assistant.sms.texting import Inbound, Texting

logger = logging.getLogger(__name__)

# Twilio answers a webhook with TwiML; replies go out through its API instead, so this is empty.
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
FORM_TYPE = "application/x-www-form-urlencoded"


class TwilioSMSInput(InputChannel):
    """One small connector: check the request, then hand the text to ``Texting``."""

    @classmethod
    def name(cls) -> str:
        return "twilio_sms"

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> InputChannel:
        return cls()  # everything comes from settings (the auth token from the environment only)

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        blueprint = Blueprint("twilio_sms_webhook", __name__)
        texting = Texting.from_settings(on_new_message, self.name()) if settings.TWILIO_AUTH_TOKEN else None
        validator = RequestValidator(settings.TWILIO_AUTH_TOKEN or "")

        @blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> response.HTTPResponse:
            return response.json({"status": "ok" if texting else "not configured"})

        @blueprint.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> response.HTTPResponse:
            if texting is None:
                return response.text("SMS is not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN).", status=503)
            form = _form(request)
            if form is None:
                return response.text(f"Expected a {FORM_TYPE} body in UTF-8.", status=400)
            if not validator.validate(_signed_url(request), form, request.headers.get("X-Twilio-Signature", "")):
                logger.warning("SMS webhook refused: missing or invalid X-Twilio-Signature")
                return response.text("Invalid signature.", status=403)
            inbound, problem = _inbound(form)
            if problem:
                return response.text(problem, status=400)
            await texting.receive(inbound)
            return response.text(EMPTY_TWIML, content_type="text/xml")

        return blueprint


def _form(request: Request) -> Optional[Dict[str, str]]:
    """The posted fields, or None when the body is not a UTF-8 form (Twilio always sends one)."""
    if (request.content_type or "").split(";")[0].strip() != FORM_TYPE:
        return None
    try:
        return dict(parse_qsl(request.body.decode("utf-8"), keep_blank_values=True, errors="strict"))
    except (UnicodeDecodeError, ValueError):
        return None


def _signed_url(request: Request) -> str:
    # Twilio signs the URL configured in its console: behind a proxy, not the one this server sees.
    return settings.SMS_WEBHOOK_PUBLIC_URL or request.url


def _inbound(form: Dict[str, str]) -> "tuple[Optional[Inbound], Optional[str]]":
    missing = [name for name in ("MessageSid", "From") if not form.get(name)]
    if missing:
        return None, f"Missing field(s): {', '.join(missing)}."
    phone = parse_phone(form["From"])
    if not phone:
        return None, "From is not a phone number."
    try:
        media = int(form.get("NumMedia") or 0)
    except ValueError:
        return None, "NumMedia must be a number."
    return Inbound(message_sid=form["MessageSid"], phone=phone, body=form.get("Body", ""), media=media), None
