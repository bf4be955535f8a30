"""How the processes log: one record per event on standard output, as text or JSON (``LOG_FORMAT``), with
e-mail addresses and phone numbers masked in every record.

The web app, the staff console and the delivery worker call ``configure``; the Rasa server and the action
server read ``logging.yml`` (their ``--logging-config-file``), which builds the same handler from here.
"""

import logging
import sys
from pathlib import Path
from typing import Optional

import phonenumbers
from pythonjsonlogger.json import JsonFormatter

from clinic_assistant import settings
from clinic_assistant.console.masking import mask_emails, replace_numbers

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# The attributes every LogRecord has; any other was passed as ``extra`` and is logged (and masked) too.
_RECORD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
# Processes configured from logging.yml, known by the package run with ``python -m``.
_PROCESS_OF_MODULE = {"rasa": "rasa", "clinic_assistant.rasa_server": "rasa", "rasa_sdk": "actions"}


def mask_number(number: str) -> str:
    """``+15551234567`` -> ``+1******67``: enough to tell numbers apart in logs, not enough to call one.

    The mask has a fixed width, so it does not tell the number's length either.
    """
    scheme, colon, address = number.rpartition(":")  # e.g. "whatsapp:+1555..."
    digits = "".join(char for char in address if char.isdigit())
    prefix = scheme + colon + ("+" if address.strip().startswith("+") else "")
    if len(digits) < 5:
        return f"{prefix}******"  # too short to show any of it safely
    return f"{prefix}{digits[0]}******{digits[-2:]}"


def mask_text(text: str) -> str:
    """``text`` with every e-mail address (``m***@example.com``), written out too ("maria (at) example (dot) com"),
    and phone number (``+1******42``), run into more digits too ("8505550142123"), masked."""
    text = mask_emails(text)
    if not any(char.isdigit() for char in text):
        return text
    # Valid numbers only: a looser leniency would mask counts, timestamps and the digits inside conversation ids,
    # and a number that is not valid reaches nobody.
    e164 = lambda match: mask_number(phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164))  # noqa: E731
    return replace_numbers(text, e164, phonenumbers.Leniency.VALID)


class MaskContacts(logging.Filter):
    """Masks contact details in a record's message (its ``%`` arguments merged in), exception and stack text and
    extra fields, so that no handler or formatter sees them unmasked."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = mask_text(_message(record)), ()
        if record.exc_info:
            record.exc_text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_info = None  # formatters would otherwise format the exception again, unmasked
        if record.exc_text:
            record.exc_text = mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_text(record.stack_info)
        for name, value in list(vars(record).items()):
            if name not in _RECORD_ATTRIBUTES and isinstance(value, str):
                setattr(record, name, mask_text(value))
        return True


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # arguments that don't fit the format: keep both rather than lose the event
        return f"{record.msg} {record.args!r}"


class Discard(logging.Filter):
    """Drops every record (logging.yml gives it to the handler coloredlogs replaces)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return False


class StandardOutput(logging.Handler):
    """Writes each formatted record to standard output.

    Not a ``StreamHandler`` on purpose: after reading its logging config, Rasa calls ``coloredlogs.install``, which
    takes every ``StreamHandler`` on stdout or stderr off the root logger and puts its own text handler there.
    """

    def emit(self, record: logging.LogRecord) -> None:
        try:
            sys.stdout.write(self.format(record) + "\n")
            sys.stdout.flush()
        except Exception:
            self.handleError(record)


def formatter(process: str, log_format: Optional[str] = None) -> logging.Formatter:
    """JSON (time, level, logger, message, process; exceptions and extras too) or text, by ``LOG_FORMAT``."""
    log_format = log_format or settings.LOG_FORMAT
    if log_format == "json":
        return JsonFormatter(
            ["levelname", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger"},
            static_fields={"process": process},
            timestamp="time",  # ISO 8601, UTC
        )
    if log_format == "text":
        return logging.Formatter(TEXT_FORMAT)
    raise ValueError(f"LOG_FORMAT must be text or json, not {log_format!r}")


def handler(process: Optional[str] = None, log_format: Optional[str] = None) -> logging.Handler:
    """The handler every process logs through: standard output, ``formatter``, contacts masked.

    ``process`` names the process in JSON records; by default the one running (``rasa``, ``actions``).
    """
    output = StandardOutput()
    output.setFormatter(formatter(process or running_process(), log_format))
    output.addFilter(MaskContacts())
    return output


def configure(process: str, level: int = logging.INFO) -> None:
    """Send this process's records of ``level`` and above through ``handler`` only."""
    logging.basicConfig(level=level, handlers=[handler(process)], force=True)


def running_process() -> str:
    """This process's name, from the package it was started with (``python -m rasa`` is ``rasa``)."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    module = spec.name.removesuffix(".__main__") if spec else Path(sys.argv[0]).stem
    return _PROCESS_OF_MODULE.get(module, module.partition(".")[0])
