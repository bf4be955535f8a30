"""How the processes log (``clinic_assistant/logs.py``, ``logging.yml``): JSON or text, contact details masked in
the message, its arguments, exception text and extra fields, and nothing else changed."""

import json
import logging
import subprocess
import sys
from typing import Iterator

import pytest

from clinic_assistant import logs
from clinic_assistant.processes import process_environment
from clinic_assistant.settings import PROJECT_DIR

US_SPELLINGS = [
    "(850) 555-0142", "850-555-0142", "850.555.0142", "850 555 0142", "8505550142",
    "+1 850 555 0142", "+18505550142", "1-850-555-0142",
]
INTERNATIONAL = "+44 20 7946 0958"
EMAIL = "maria.lopez@example.com"
ORDINARY = [
    "Rasa server is up and running on http://127.0.0.1:5005/webhooks/readiness/",
    "Delivered CR-7K3P in 0.25s (attempt 3/5), next round at 2024-05-01 12:30:45,123",
    "Indexed 2048 events up to id 10234567 of conversation sms-9f8e7d6c5b4a39281706f5e4d3c2b1a0",
    "conversation 123e4567-e89b-12d3-a456-426614174000 answered with 503",
    "pain 7/10 since 2019; call 911 or 988",
    "Staff console at http://127.0.0.1:8081/ (Ctrl-C stops it); retrying at 2024-05-12 10 in 3.5 s",
    "I was at work. Then at home, at 3.30",
]


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """A logger of its own with the processes' JSON handler (pytest's own handlers stay on the root logger)."""
    log = logging.getLogger("tests.logs")
    log.handlers[:] = [logs.handler("web", "json")]
    log.propagate, log.level = False, logging.INFO
    yield log
    log.handlers.clear()


def records(capsys: pytest.CaptureFixture) -> list:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_json_records_carry_time_level_logger_message_and_process(logger, capsys):
    logger.warning("Delivery %s failed", "CR-7K3P")
    [record] = records(capsys)
    assert {k: record[k] for k in ("level", "logger", "message", "process")} == {
        "level": "WARNING", "logger": "tests.logs", "message": "Delivery CR-7K3P failed", "process": "web",
    }
    assert record["time"].endswith("+00:00") and "T" in record["time"]  # ISO 8601, UTC


@pytest.mark.parametrize("number", US_SPELLINGS)
def test_us_numbers_are_masked_in_the_message_and_in_its_arguments(logger, capsys, number):
    logger.info(f"call me at {number}")
    logger.info("call me at %s", number)
    assert [r["message"] for r in records(capsys)] == ["call me at +1******42"] * 2


def test_international_numbers_and_email_addresses_are_masked(logger, capsys):
    logger.info("write to %s or call %s", EMAIL, INTERNATIONAL)
    assert records(capsys)[0]["message"] == "write to m***@example.com or call +4******58"


def test_exception_text_and_extra_fields_are_masked(logger, capsys):
    try:
        raise ValueError(f"no answer from {EMAIL} at {INTERNATIONAL}")
    except ValueError:
        logger.exception("sending to %s failed", "850.555.0142", extra={"contact": "(850) 555-0142"})
    [record] = records(capsys)
    assert record["message"] == "sending to +1******42 failed" and record["contact"] == "+1******42"
    assert "ValueError: no answer from m***@example.com at +4******58" in record["exc_info"]
    assert "lopez" not in json.dumps(record) and "7946" not in json.dumps(record)


@pytest.mark.parametrize(
    "text, masked",
    [
        ("call 850 555 0142 3pm", "call +1******42 3pm"),
        ("call 8505550142123", "call +1******42***"),
        ("write to maria (at) example (dot) com", "write to m***@example.com"),
        ("write to maria at example dot com", "write to m***@example.com"),
        ("write to maria @ example.com", "write to m***@example.com"),
    ],
)
def test_numbers_run_into_more_digits_and_written_out_addresses_are_masked(logger, capsys, text, masked):
    logger.info(text)
    assert records(capsys)[0]["message"] == masked


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_text_is_untouched(logger, capsys, text):
    logger.info(text)
    logger.info("%s", text)
    assert [r["message"] for r in records(capsys)] == [text, text]


def test_text_format_is_one_readable_line_masked_too(capsys):
    log = logging.getLogger("tests.logs.text")
    log.handlers[:], log.propagate = [logs.handler("delivery", "text")], False
    log.error("call %s", "850-555-0142")
    log.handlers.clear()
    assert capsys.readouterr().out.endswith(" ERROR tests.logs.text: call +1******42\n")


def test_arguments_that_do_not_fit_the_format_are_kept_not_raised(logger, capsys):
    logger.info("one %s", "850-555-0142", "two")
    assert records(capsys)[0]["message"] == "one %s ('+1******42', 'two')"


def test_an_unknown_log_format_is_refused():
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        logs.formatter("web", "yaml")


# Rasa reads logging.yml, then calls coloredlogs.install as below; rasa_sdk calls it first. Either way every record
# must come out once, on stdout, in LOG_FORMAT and masked, and nothing of coloredlogs' text on stderr.
SERVER_LOGGING = """
import logging, logging.config, coloredlogs, yaml
config = yaml.safe_load(open("logging.yml"))
fmt = "%(asctime)s %(levelname)-8s %(name)s  - %(message)s"
if ORDER == "rasa":
    logging.config.dictConfig(config)
    coloredlogs.install(level=logging.INFO, use_chroot=False, fmt=fmt)
else:
    coloredlogs.install(level=logging.INFO, use_chroot=False, fmt=fmt)
    logging.config.dictConfig(config)
logging.getLogger("rasa.core.processor").info("text from %s", "850 555 0142")
logging.getLogger("sanic.error").error("failed for %s", "maria.lopez@example.com")
"""


@pytest.mark.parametrize("order", ["rasa", "rasa_sdk"])
def test_the_servers_logging_config_uses_the_same_handler(order):
    env = process_environment({"LOG_FORMAT": "json"})
    script = f"ORDER = {order!r}\n{SERVER_LOGGING}"
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stderr == "", done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert [(r["logger"], r["message"]) for r in lines] == [
        ("rasa.core.processor", "text from +1******42"),
        ("sanic.error", "failed for m***@example.com"),
    ]
