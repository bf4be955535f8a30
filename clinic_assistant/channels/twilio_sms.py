"""The SMS channel: Twilio's messaging webhook, verified, at ``/webhooks/twilio_sms/webhook``.

Rasa 3.6's own Twilio channel takes any POST as a text from whatever number it names, sends
with a blocking client inside the event loop, drops photos silently and texts buttons as
separate messages with their payloads. Here every request must carry a valid
``X-Twilio-Signature`` for the URL Twilio was configured with; the texting itself (keywords,
consent, numbered choices, replies) is ``clinic_assistant.sms.texting``.
"""

import asyncio
import logging
import re
from typing import Any, Awaitable, Callable, Dict, Optional
from urllib.parse import parse_qsl

from rasa.core.channels.channel import InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from twilio.request_validator import RequestValidator

from clinic_assistant import settings
from clinic_assistant.channels.input_checks import without_controls
from clinic_assistant.contact import parse_phone
from clinic_assistant.sms.texting import Texting

logger = logging.getLogger(__name__)

# Twilio answers a webhook with TwiML; replies go out through its API instead, so this is empty.
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>'
FORM_TYPE = "application/x-www-form-urlencoded"
# Twilio's message ids: two letters (SM, MM) and 32 hex digits; a little looser, never anything else.
MESSAGE_SID = re.compile(r"[A-Za-z]{2}[0-9A-Za-z]{8,62}")


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
            await texting.receive(texting.inbound(**inbound))  # kept, then answered in the background
            return response.text(EMPTY_TWIML, content_type="text/xml")

        @blueprint.listener("after_server_start")
        async def start_retries(app: Any, _: Any) -> None:
            if texting is not None:
                app.ctx.sms_retries = asyncio.create_task(texting.run_retries())

        @blueprint.listener("before_server_stop")
        async def stop_retries(app: Any, _: Any) -> None:
            retries = getattr(app.ctx, "sms_retries", None)
            if retries is not None:
                retries.cancel()

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


def _inbound(form: Dict[str, str]) -> "tuple[Dict[str, Any], Optional[str]]":
    """The text's fields from Twilio's form, or why the form is not one Twilio sends."""
    missing = [name for name in ("MessageSid", "From") if not form.get(name)]
    if missing:
        return {}, f"Missing field(s): {', '.join(missing)}."
    if not MESSAGE_SID.fullmatch(form["MessageSid"]):
        return {}, "MessageSid is not a Twilio message id."
    phone = parse_phone(form["From"])
    if not phone:
        return {}, "From is not a phone number."
    try:
        media = int(form.get("NumMedia") or 0)
    except ValueError:
        return {}, "NumMedia must be a number."
    # A control character a phone let through is dropped, not the text: Twilio has already delivered it.
    body = without_controls(form.get("Body", ""))
    return {"message_sid": form["MessageSid"], "phone": phone, "body": body, "media": media}, None
