"""The SMS sender against a fake of Twilio's Messages API on loopback: real HTTP, real twilio-python client."""

import asyncio
import contextlib
import json
import logging
import secrets
import urllib.error
import urllib.parse
import urllib.request
from base64 import b64encode
from typing import List, Tuple

import pytest

from clinic_assistant.logs import mask_number
from clinic_assistant.processes import free_port
from clinic_assistant.sms.sender import SmsSender
from tests.twilio_fake import TwilioFake

ACCOUNT_SID = "AC" + secrets.token_hex(16)
AUTH_TOKEN = secrets.token_hex(16)
CLINIC = "+15550001111"
PATIENT = "+15551234567"
BODY = "Your pain diary reminder: how was today, 0-10?"
LOGGER = "clinic_assistant.sms.sender"


@pytest.fixture
def twilio():
    with TwilioFake(ACCOUNT_SID, AUTH_TOKEN) as fake:
        yield fake


class Undelivered:
    """An on_failure hook that keeps its calls, as the channel keeps unsent replies for staff."""

    def __init__(self) -> None:
        self.calls: List[Tuple[str, str, str]] = []

    async def __call__(self, to: str, body: str, reason: str) -> None:
        self.calls.append((to, body, reason))


@pytest.fixture
def failures():
    return Undelivered()


def make_sender(base_url: str, failures: Undelivered, token: str = AUTH_TOKEN, **options) -> SmsSender:
    # Tiny backoff: the retry tests wait milliseconds, not seconds.
    return SmsSender(ACCOUNT_SID, token, CLINIC, api_base_url=base_url, backoff=0.01, on_failure=failures, **options)


@pytest.fixture
async def sender(twilio, failures):
    sms = make_sender(twilio.base_url, failures)
    yield sms
    await sms.close()


async def test_a_send_arrives_as_sent_and_returns_its_sid(twilio, sender):
    sid = await sender.send(PATIENT, BODY)

    [message] = twilio.wait_for_messages(1)
    assert message == {"sid": sid, "to": PATIENT, "from_": CLINIC, "body": BODY}
    assert sid.startswith("SM") and len(sid) == 34
    assert twilio.requests[0]["path"] == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"


async def test_a_wrong_token_is_refused_once_and_logged(twilio, failures, caplog):
    sms = make_sender(twilio.base_url, failures, token="not-the-token")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert await sms.send(PATIENT, BODY) is None
    await sms.close()

    assert [r["status"] for r in twilio.requests] == [401]  # 401 is not worth another try
    assert twilio.sent == []
    [error] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "+1******67 not sent after 1 attempt: HTTP 401, Twilio error 20003" in error.getMessage()
    assert failures.calls == [(PATIENT, BODY, "HTTP 401, Twilio error 20003")]


async def test_two_server_errors_then_the_third_attempt_gets_through(twilio, sender, caplog):
    twilio.fail_next(2, 500)
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        sid = await sender.send(PATIENT, BODY)

    assert sid == twilio.wait_for_messages(1)[0]["sid"]
    assert [r["status"] for r in twilio.requests] == [500, 500, 201]
    assert [r.getMessage() for r in caplog.records] == [
        "SMS to +1******67 failed, attempt 1/3: HTTP 500, Twilio error 20500",
        "SMS to +1******67 failed, attempt 2/3: HTTP 500, Twilio error 20500",
    ]


async def test_an_outage_gives_up_after_the_attempts_and_tells_on_failure(twilio, sender, failures, caplog):
    twilio.fail_all(503)
    with caplog.at_level(logging.DEBUG):
        assert await sender.send(PATIENT, BODY) is None

    assert [r["status"] for r in twilio.requests] == [503] * sender.attempts
    assert failures.calls == [(PATIENT, BODY, "HTTP 503, Twilio error 20503")]
    final = caplog.records[-1]
    assert final.levelno == logging.ERROR
    assert final.getMessage() == "SMS reply to +1******67 not sent after 3 attempts: HTTP 503, Twilio error 20503"
    # twilio-python's own request logs included: no full number, no message text anywhere.
    assert PATIENT not in caplog.text and PATIENT[1:] not in caplog.text and BODY not in caplog.text

    twilio.recover()
    assert await sender.send(PATIENT, BODY)


async def test_too_many_requests_is_retried(twilio, sender):
    twilio.fail_next(1, 429)

    assert await sender.send(PATIENT, BODY)
    assert [r["status"] for r in twilio.requests] == [429, 201]


async def test_an_invalid_number_is_not_retried(twilio, sender, failures):
    twilio.fail_next(1, 400)  # Twilio's 21211, like an unsubscribed recipient's 21610: retrying cannot help

    assert await sender.send("+1555", BODY) is None
    assert [r["status"] for r in twilio.requests] == [400]
    assert failures.calls == [("+1555", BODY, "HTTP 400, Twilio error 21211")]


async def test_network_errors_are_retried_then_given_up(failures, caplog):
    sms = make_sender(f"http://127.0.0.1:{free_port()}", failures)  # nothing listens there
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert await sms.send(PATIENT, BODY) is None
    await sms.close()

    assert [r.levelno for r in caplog.records] == [logging.WARNING] * 3 + [logging.ERROR]
    assert failures.calls == [(PATIENT, BODY, "network error: ClientConnectorError")]


async def test_a_stalled_answer_times_out_each_attempt(twilio, failures):
    twilio.delay = 1.0
    sms = make_sender(twilio.base_url, failures, attempts=2, timeout=0.2)
    assert await sms.send(PATIENT, BODY) is None
    await sms.close()

    assert len(twilio.requests) == 2
    assert failures.calls == [(PATIENT, BODY, "network error: TimeoutError")]


async def test_the_event_loop_keeps_running_while_twilio_answers_slowly(twilio, sender):
    twilio.delay = 0.5
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    task = asyncio.create_task(ticker())
    assert await sender.send(PATIENT, BODY)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    assert ticks >= 20  # ~50 if never blocked; 0 had the send blocked the loop for its 0.5 s


async def test_close_closes_the_session_and_a_later_send_opens_another(twilio, sender):
    await sender.send(PATIENT, BODY)
    session = sender._http.session

    await sender.close()
    assert session.closed

    assert await sender.send(PATIENT, BODY)
    assert not sender._http.session.closed


@pytest.mark.parametrize(
    "number, masked",
    [
        ("+15551234567", "+1******67"),
        ("+447700900123", "+4******23"),
        ("07700 900123", "0******23"),
        ("whatsapp:+15551234567", "whatsapp:+1******67"),
        ("+1234", "+******"),
        ("", "******"),
    ],
)
def test_mask_number_keeps_only_the_first_and_last_two_digits(number, masked):
    assert mask_number(number) == masked


@pytest.mark.parametrize(
    "form, code",
    [({"From": CLINIC, "Body": BODY}, 21604), ({"To": PATIENT, "From": CLINIC}, 21602)],
)
def test_the_fake_refuses_incomplete_messages_as_twilio_does(twilio, form, code):
    status, payload = _post(twilio, form, (ACCOUNT_SID, AUTH_TOKEN))

    assert (status, payload["code"], payload["status"]) == (400, code, 400)
    assert twilio.sent == [] and [r["status"] for r in twilio.requests] == [400]


def test_the_fake_demands_basic_auth(twilio):
    status, payload = _post(twilio, {"To": PATIENT, "From": CLINIC, "Body": BODY}, None)

    assert (status, payload) == (401, {**payload, "code": 20003, "message": "Authenticate", "status": 401})


def test_waiting_for_messages_that_never_come_says_what_came(twilio):
    with pytest.raises(AssertionError, match=r"expected 1 message\(s\) within 0.1s, got \[\]"):
        twilio.wait_for_messages(1, timeout=0.1)


def _post(twilio: TwilioFake, form: dict, auth) -> Tuple[int, dict]:
    request = urllib.request.Request(
        f"{twilio.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        data=urllib.parse.urlencode(form).encode(),
    )
    if auth:
        request.add_header("Authorization", "Basic " + b64encode(":".join(auth).encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
