"""Inbound texts are kept before anything else and marked answered only after their turn: a failed turn is
tried again and stays listed for staff meanwhile. Real clinic database, real sender, Twilio's API on loopback;
the assistant's turn is a function here so that it can fail on purpose."""

import asyncio
import secrets
from datetime import datetime, timedelta, timezone
from typing import List

import pytest

from clinic_assistant.sms.sender import SmsSender
from clinic_assistant.sms.texting import Texting
from clinic_assistant.store.db import engine_for
from clinic_assistant.store.schema import upgrade
from clinic_assistant.store.sms import attempts, inbound_status, unanswered
from tests.twilio_fake import TwilioFake

ACCOUNT_SID = "AC" + secrets.token_hex(16)
AUTH_TOKEN = secrets.token_hex(16)
PATIENT = "+18505550177"


class FlakyAssistant:
    """Rasa's message handler as the channel calls it: fails its first ``failures`` turns, then answers."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.turns: List[str] = []

    async def __call__(self, message) -> None:
        self.turns.append(message.text)
        if len(self.turns) <= self.failures:
            raise RuntimeError("the tracker store went away")
        await message.output_channel.send_text_message(message.sender_id, f"answer to {message.text}")


@pytest.fixture
def twilio():
    with TwilioFake(ACCOUNT_SID, AUTH_TOKEN) as fake:
        yield fake


@pytest.fixture
def engine(clinic_db_url):
    upgrade(clinic_db_url)
    return engine_for(clinic_db_url)


def texting(engine, twilio, assistant: FlakyAssistant) -> Texting:
    sender = SmsSender(ACCOUNT_SID, AUTH_TOKEN, "+18505550100", api_base_url=twilio.base_url, backoff=0.01)
    return Texting(assistant, "twilio_sms", engine, sender, b"secret", 4, retry_seconds=0.05, max_attempts=3)


async def settle(channel: Texting) -> None:
    while channel._turns:
        await asyncio.sleep(0.01)


async def test_a_failed_turn_is_kept_listed_and_answered_on_the_next_try(engine, twilio):
    assistant = FlakyAssistant(failures=1)
    channel = texting(engine, twilio, assistant)
    text = channel.inbound("SM" + secrets.token_hex(16), PATIENT, "what is crps", 0)
    await channel.receive(text)
    await settle(channel)
    assert inbound_status(engine, text.message_sid) == "failed"
    later = datetime.now(timezone.utc) + timedelta(minutes=1)
    [listed] = unanswered(engine, older_than=later)
    assert (listed["body"], listed["last_error"]) == ("what is crps", "RuntimeError")
    assert [m["body"] for m in twilio.sent][-1].startswith("Sorry, something went wrong")
    await asyncio.sleep(0.1)  # the backoff
    assert await channel.retry_due() == 1
    assert inbound_status(engine, text.message_sid) == "handled"
    assert assistant.turns == ["what is crps", "what is crps"]
    assert twilio.sent[-1]["body"] == "answer to what is crps"
    assert unanswered(engine, older_than=later) == []
    await channel.sender.close()


async def test_a_text_that_keeps_failing_stays_listed_after_its_last_try(engine, twilio):
    channel = texting(engine, twilio, FlakyAssistant(failures=99))
    text = channel.inbound("SM" + secrets.token_hex(16), PATIENT, "hello?", 0)
    await channel.receive(text)
    await settle(channel)
    for _ in range(5):
        await asyncio.sleep(0.25)
        await channel.retry_due()
    assert attempts(engine, text.message_sid) == 3  # max_attempts, then it waits for staff
    assert [row["message_sid"] for row in unanswered(engine, datetime.now(timezone.utc))] == [text.message_sid]
    assert sum(m["body"].startswith("Sorry") for m in twilio.sent) == 1  # one apology, not one per try
    await channel.sender.close()


async def test_twilio_sending_a_text_again_gets_it_answered_once(engine, twilio):
    assistant = FlakyAssistant(failures=0)
    channel = texting(engine, twilio, assistant)
    text = channel.inbound("SM" + secrets.token_hex(16), PATIENT, "what is crps", 0)
    await asyncio.gather(channel.receive(text), channel.receive(text))
    await settle(channel)
    await channel.receive(text)
    await settle(channel)
    assert assistant.turns == ["what is crps"]
    await channel.sender.close()
