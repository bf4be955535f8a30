"""Readiness checks: do the services a process needs answer now? Used by the staff console's ``/readyz`` and the
Rasa server's ``/webhooks/readiness/`` (``channels/readiness.py``).

A check is a blocking call that raises when its service does not answer; each runs in a thread with a time limit,
so a database that hangs makes the probe answer "not ready" instead of hanging it too.
"""

import asyncio
from typing import Any, Callable, Dict, Tuple

from sqlalchemy import text
from sqlalchemy.engine import Engine

# Seconds per check: below the probe's own timeout (set it to 3 s or more).
CHECK_SECONDS = 2.0

Check = Callable[[], object]


def query(engine: Engine) -> None:
    """A trivial query; raises when the database does not answer."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


async def failures(checks: Dict[str, Check], timeout: float = CHECK_SECONDS) -> Dict[str, str]:
    """The checks that raised or ran out of time, each with its error's type: never the error's text, which may
    hold a URL with its password."""
    results = await asyncio.gather(
        *(asyncio.wait_for(asyncio.to_thread(check), timeout) for check in checks.values()), return_exceptions=True
    )
    outcomes = zip(checks, results, strict=True)
    return {name: type(result).__name__ for name, result in outcomes if isinstance(result, BaseException)}


def report(failed: Dict[str, str]) -> Tuple[Dict[str, Any], int]:
    """A probe's answer, the same from every process: the JSON body and the HTTP status."""
    if failed:
        return {"status": "not ready", "unavailable": failed}, 503
    return {"status": "ready"}, 200
