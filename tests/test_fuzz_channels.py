"""Every channel, fuzzed against the real running servers: only 2xx/4xx answers (or socket.io error events),
never a 5xx or a dropped connection, and every server still ready afterwards."""

import urllib.request

import pytest

from clinic_assistant import settings
from tests.fuzzing import Servers, fuzz_rest, fuzz_sms, fuzz_socketio


@pytest.fixture(scope="module")
def servers(running_assistant, sms_account) -> Servers:
    return Servers(
        rasa_url=running_assistant.base_url,
        rest_token=running_assistant.token,
        widget_origin=running_assistant.web_url,
        sms_auth_token=sms_account.auth_token,
        sms_public_url=sms_account.public_url,
    )


def assert_every_server_ready(running_assistant) -> None:
    urls = [service.health_url for service in running_assistant.services.values() if service.health_url]
    for url in urls:
        with urllib.request.urlopen(url.replace("/healthz", "/readyz"), timeout=10) as reply:
            assert reply.status == 200, url


@pytest.mark.parametrize("fuzz", [fuzz_rest, fuzz_socketio, fuzz_sms], ids=["rest", "socketio", "sms"])
def test_no_input_gets_a_5xx_or_a_dropped_connection(fuzz, servers, running_assistant):
    outcome = fuzz(servers, settings.TEST_FUZZ_EXAMPLES)
    assert outcome.failures == []
    assert outcome.tried >= settings.TEST_FUZZ_EXAMPLES // 2
    assert_every_server_ready(running_assistant)
