"""Record what staff must see (safety flags, reach-out requests) without
ever holding up a reply.

An action hands the record to ``BackgroundRecorder.submit`` and returns at
once; the write runs in the background, on a worker thread, with a few
retries. If the clinic database stays unreachable the record is appended to
a local spool file (JSON lines) and the failure is logged with its
conversation; the spool is written to the database, in the same
transaction, with the next record that can be stored. So nothing a visitor
gave is lost, only late.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import List, Sequence, Set

from clinic_assistant.store.db import Flag, ReachOut, Record, StoreUnavailable, engine_for, record_all
from clinic_assistant.store.schema import upgrade

logger = logging.getLogger(__name__)

RETRY_DELAYS = (0.5, 2.0)  # seconds between attempts before spooling


RECORD_TYPES = {cls.__name__: cls for cls in (Flag, ReachOut)}


class BackgroundRecorder:
    """Writes records to the clinic database in the background."""

    def __init__(self, database_url: str, spool_path: Path, retry_delays: Sequence[float] = RETRY_DELAYS) -> None:
        self.database_url = database_url
        self.spool_path = spool_path
        self.retry_delays = tuple(retry_delays)
        self._schema_ready = False
        self._lock = threading.Lock()  # one writer of the spool at a time
        self._pending: Set[asyncio.Task] = set()

    def submit(self, record: Record) -> asyncio.Task:
        """Start storing ``record``; the caller does not wait for it."""
        task = asyncio.get_running_loop().create_task(self.record(record))
        self._pending.add(task)  # keep a reference until done (asyncio holds only weak ones)
        task.add_done_callback(self._pending.discard)
        return task

    async def record(self, record: Record) -> bool:
        """Store ``record`` (and any spooled ones); True if it reached the database."""
        for delay in (*self.retry_delays, None):
            try:
                await asyncio.to_thread(self._write, record)
                return True
            except StoreUnavailable as error:
                if delay is None:
                    await asyncio.to_thread(self._spool, record)
                    logger.error(
                        "Could not store the %s of conversation %s in the clinic database (%s); "
                        "kept in %s until the database is back.",
                        _describe(record), record.conversation_id, error, self.spool_path,
                    )
                    return False
                await asyncio.sleep(delay)
        return False

    async def drain(self) -> None:
        """Wait for the records being stored (used at shutdown and in tests)."""
        if self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def _write(self, record: Record) -> None:
        with self._lock:
            if not self._schema_ready:
                upgrade(self.database_url)
                self._schema_ready = True
            spooled = _read_spool(self.spool_path)
            record_all(engine_for(self.database_url), [*spooled, record])
            if spooled:
                self.spool_path.unlink(missing_ok=True)
                logger.info("Stored %d record(s) kept while the clinic database was down.", len(spooled))

    def _spool(self, record: Record) -> None:
        values = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(record).items()}
        with self._lock:
            self.spool_path.parent.mkdir(parents=True, exist_ok=True)
            with self.spool_path.open("a", encoding="utf-8") as spool:
                spool.write(json.dumps({"type": type(record).__name__, "values": values}) + "\n")


def _describe(record: Record) -> str:
    return f"{record.kind} flag" if isinstance(record, Flag) else "reach-out request"


def _read_spool(path: Path) -> List[Record]:
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            entry = json.loads(line)
            cls = RECORD_TYPES[entry["type"]]
            values = {k: datetime.fromisoformat(v) if k.endswith("_at") else v for k, v in entry["values"].items()}
            records.append(cls(**values))
    return records
