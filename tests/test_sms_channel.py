"""The SMS channel on the real Rasa and action servers: signed Twilio webhooks in, texts out to Twilio's API
(played on loopback), the clinic database holding consent, choices and undelivered replies."""

import os
import secrets
import signal
import urllib.error
import urllib.parse
import urllib.request
from typing import Dict, List, Optional, Tuple

import pytest
from twilio.request_validator import RequestValidator

from clinic_assistant.sms.text import is_gsm7, segments
from clinic_assistant.sms.texting import conversation_id
from clinic_assistant.store.consultations import list_requests
from clinic_assistant.store.db import engine_for, flags_for
from clinic_assistant.store.sms import inbound_status, undelivered
from tests.conftest import SmsAccount, wait_for


def new_number() -> str:
    return f"+1850555{secrets.randbelow(10_000):04d}"


class Phone:
    """A patient's phone texting the clinic, as Twilio relays it: a signed form POST per text."""

    def __init__(
        self, assistant, twilio, account: SmsAccount, database_url: str, number: Optional[str] = None
    ) -> None:
        self.assistant, self.twilio, self.account = assistant, twilio, account
        self.clinic = engine_for(database_url)
        self.number = number or new_number()
        self.webhook = f"{assistant.base_url}/webhooks/twilio_sms/webhook"
        self.conversation = conversation_id(account.conversation_secret.encode(), self.number)

    def fields(self, body: str, **extra: str) -> Dict[str, str]:
        return {
            "MessageSid": "SM" + secrets.token_hex(16),
            "AccountSid": self.account.account_sid,
            "From": self.number,
            "To": self.account.number,
            "Body": body,
            "NumMedia": "0",
            **extra,
        }

    def post(
        self, form: Dict[str, str], signature: Optional[str] = None, raw: Optional[bytes] = None,
        content_type: str = "application/x-www-form-urlencoded",
    ) -> Tuple[int, str]:
        """Post as Twilio would; the signature is Twilio's for the public URL unless one is given."""
        if signature is None:
            signature = RequestValidator(self.account.auth_token).compute_signature(self.account.public_url, form)
        body = raw if raw is not None else urllib.parse.urlencode(form).encode()
        headers = {"Content-Type": content_type, "X-Twilio-Signature": signature}
        request = urllib.request.Request(self.webhook, data=body, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def received(self) -> List[str]:
        return [m["body"] for m in self.twilio.sent if m["to"] == self.number]

    def text(self, body: str, **extra: str) -> List[str]:
        """Send one text; the texts the clinic sent back to it once it was answered (in the background)."""
        before = len(self.received())
        form = self.fields(body, **extra)
        status, answer = self.post(form)
        assert status == 200 and "<Response>" in answer, (status, answer)
        self.wait_until_answered(form["MessageSid"])
        return self.received()[before:]

    def wait_until_answered(self, message_sid: str, timeout: float = 60) -> None:
        answered = lambda: inbound_status(self.clinic, message_sid) == "handled"  # noqa: E731
        wait_for(answered, timeout, f"text {message_sid} answered")


@pytest.fixture
def phone(running_assistant, twilio_api, sms_account, clinic_database) -> Phone:
    return Phone(running_assistant, twilio_api, sms_account, clinic_database.url)


def said(assistant, phone: Phone) -> List[str]:
    """What the tracker store recorded of the texts that reached the assistant from this phone."""
    return [event["text"] for event in assistant.conversation_events(phone.conversation, "user")]


def test_a_signed_text_is_answered_by_text_from_the_clinic_number(phone, twilio_api):
    replies = phone.text("what are the symptoms of crps")
    joined = " ".join(replies)
    assert "swelling" in joined and "STOP to opt out" in joined  # the SMS wording of the opening notice
    assert {m["from_"] for m in twilio_api.sent if m["to"] == phone.number} == {phone.account.number}


def test_a_missing_forged_or_misaddressed_signature_is_refused(phone, running_assistant):
    form = phone.fields("what is crps")
    signed_elsewhere = RequestValidator(phone.account.auth_token).compute_signature(phone.webhook, form)
    forged = RequestValidator("not-the-token").compute_signature(phone.account.public_url, form)
    for signature in ("", forged, signed_elsewhere):
        assert phone.post(form, signature=signature)[0] == 403
    # Another sender's number in a request signed for this one: the signature no longer matches.
    signature = RequestValidator(phone.account.auth_token).compute_signature(phone.account.public_url, form)
    assert phone.post({**form, "From": new_number()}, signature=signature)[0] == 403
    assert phone.received() == [] and said(running_assistant, phone) == []


def test_a_retried_message_sid_is_handled_once(phone, running_assistant):
    form = phone.fields("what is crps")
    assert phone.post(form)[0] == 200
    phone.wait_until_answered(form["MessageSid"])
    sent = len(phone.received())
    assert sent >= 1
    assert phone.post(form)[0] == 200
    assert len(phone.received()) == sent and said(running_assistant, phone) == ["what is crps"]


def test_stop_then_silence_then_start(phone, running_assistant):
    confirmation = phone.text("Stop")
    assert len(confirmation) == 1 and "unsubscribed" in confirmation[0] and "START" in confirmation[0]
    assert phone.text("what is crps") == []  # reaches the assistant (staff see it) but nothing is sent
    assert said(running_assistant, phone) == ["what is crps"]
    assert phone.text("STOP") == [] and phone.text("help") == []
    resubscribed = phone.text("START")
    assert len(resubscribed) == 1 and "resubscribed" in resubscribed[0]
    assert "swelling" in " ".join(phone.text("what are the symptoms of crps"))


def test_help_names_the_clinic_how_to_reach_staff_rates_and_opt_out(phone):
    (reply,) = phone.text("HELP")
    for part in ("The Crane Center", "Destin, Florida", "Msg & data rates may apply", "Reply STOP to opt out"):
        assert part in reply


def test_buttons_become_one_numbered_list_and_a_number_chooses(phone):
    greeting = phone.text("hello")[-1]
    assert "Reply 1 for What is CRPS?, 2 for Symptoms, 3 for Treatments or 4 for Ketamine." in greeting
    assert "What are the symptoms of CRPS?" not in greeting  # a payload is never shown
    assert "swelling" in " ".join(phone.text("2"))


def test_every_text_fits_the_segment_budget_in_plain_gsm(phone):
    replies = phone.text("how is crps treated?")  # notice + answer: more than two segments together
    assert len(replies) >= 2
    for reply in replies:
        assert is_gsm7(reply) and segments(reply) <= phone.account.max_segments, reply
    assert "General information only" in replies[-1]


def test_a_photo_gets_a_request_not_to_send_records_and_is_not_kept(phone, running_assistant, clinic_database):
    media = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
    (reply,) = phone.text("", NumMedia="1", MediaUrl0=media, MediaContentType0="image/jpeg")
    assert "don't send photos or medical records" in reply
    assert said(running_assistant, phone) == []
    tracker = running_assistant.tracker_db.read_bytes()
    assert b"Media/ME1" not in tracker


def test_a_crisis_text_gets_the_text_988_reply_and_a_flag(phone, clinic_database):
    reply = " ".join(phone.text("i want to kill myself"))
    assert "text 988" in reply and "911" in reply
    flags = wait_for(lambda: flags_for(engine_for(clinic_database.url), phone.conversation), what="the flag")
    assert (flags[0].kind, flags[0].channel) == ("crisis", "twilio_sms")


def test_bad_input_gets_a_4xx_or_a_safe_reply_never_a_500(phone, running_assistant):
    no_from = {k: v for k, v in phone.fields("hi").items() if k != "From"}
    assert phone.post(no_from)[0] == 400
    assert phone.post(phone.fields("hi", From="not a number"))[0] == 400
    assert phone.post(phone.fields("hi", NumMedia="lots"))[0] == 400
    assert phone.post({}, raw=b"Body=\xff\xfe&From=%2B18505550100", signature="x")[0] == 400
    assert phone.post({}, raw=b"Body=%FF%FE", signature="x")[0] == 400
    assert phone.post(phone.fields("hi"), content_type="application/json")[0] == 400
    (too_long,) = phone.text("pain " * 2000)
    assert "too long" in too_long
    assert "swelling" in " ".join(phone.text("what are the symptoms of crps"))  # still answering


def test_a_reply_twilio_will_not_take_is_kept_for_staff(phone, twilio_api, clinic_database, running_assistant):
    twilio_api.fail_all(503)
    try:
        assert phone.text("what is crps") == []
    finally:
        twilio_api.recover()
    kept = [row for row in undelivered(engine_for(clinic_database.url)) if row["phone"] == phone.number]
    assert kept and "CRPS" in " ".join(row["body"] for row in kept)
    assert phone.number not in running_assistant.log("rasa")


def test_a_consultation_requested_by_text_is_stored_with_the_texting_number(phone, clinic_database):
    assert "What's your name?" in " ".join(phone.text("I'd like to book a consultation"))
    assert "Shall we call you at this number?" in " ".join(phone.text("Maria Lopez"))
    assert "email" in " ".join(phone.text("yes"))
    assert "help with" in " ".join(phone.text("no"))
    assert "days and times" in " ".join(phone.text("CRPS in my left foot"))
    assert phone.number in " ".join(phone.text("weekday mornings"))
    assert "Maria Lopez" in " ".join(phone.text("yes"))
    reply = " ".join(phone.text("yes"))
    stored = [r for r in list_requests(engine_for(clinic_database.url)) if r.request.phone == phone.number]
    assert len(stored) == 1 and stored[0].reference in reply
    assert (stored[0].request.channel, stored[0].request.name) == ("twilio_sms", "Maria Lopez")


def test_a_text_whose_server_died_mid_turn_is_answered_after_the_restart(phone, running_assistant):
    """Twilio is answered as soon as the text is kept; a turn cut short by a crash is taken up again."""
    actions = running_assistant.services["actions"].process
    form = phone.fields("what are the symptoms of crps")  # a new number: its first turn calls the action server
    os.kill(actions.pid, signal.SIGSTOP)  # so the turn is still waiting when the Rasa server dies
    try:
        assert phone.post(form)[0] == 200
        assert phone.received() == []
        assert inbound_status(phone.clinic, form["MessageSid"]) == "received"
        running_assistant.restart("rasa", crash=True)
    finally:
        os.kill(actions.pid, signal.SIGCONT)
    phone.wait_until_answered(form["MessageSid"])
    assert "swelling" in " ".join(phone.received())
    assert said(running_assistant, phone) == ["what are the symptoms of crps"]
