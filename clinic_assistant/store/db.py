"""Queries on the clinic's own database, raising domain errors instead of SQLAlchemy's.

Callers (the actions) get ``Flag`` values back and ``StoreUnavailable`` when the database
cannot be reached, so they can carry on with the conversation instead of crashing.
Engines come from ``engine_for``; the schema from ``schema.upgrade``.
"""

import sqlite3
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from datetime import datetime, timezone
from functools import cache
from typing import Dict, Iterator, List, Optional, Union

from sqlalchemy import Table, create_engine, event, select
from sqlalchemy.engine import URL, Connection, Engine, Row, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

from clinic_assistant.store.tables import (
    CONTACT_KINDS,
    DETECTORS,
    FLAG_KINDS,
    conversation_flags,
    reach_out_requests,
)

# Seconds: an unreachable PostgreSQL must fail the action quickly, not hang the conversation.
POSTGRES_CONNECT_TIMEOUT = 3


class StoreUnavailable(Exception):
    """The clinic database cannot be used now: down, unreachable, locked or not migrated."""


@dataclass(frozen=True)
class Flag:
    """A safety flag raised in a conversation; invalid values are refused on creation."""

    conversation_id: str
    channel: str  # the input channel: "rest", "socketio", "twilio", ...
    kind: str  # one of FLAG_KINDS
    detected_by: str  # one of DETECTORS
    message: str  # the user's message, verbatim
    flagged_at: datetime  # timezone-aware

    def __post_init__(self) -> None:
        problem = record_problem(self, conversation_flags)
        if problem:
            raise ValueError(f"invalid flag: {problem}")


@dataclass(frozen=True)
class ReachOut:
    """A visitor's request that the clinic's staff contact them, after a crisis reply."""

    conversation_id: str
    channel: str
    contact: str  # E.164 phone number or e-mail address
    contact_kind: str  # one of CONTACT_KINDS
    message: str  # what the visitor wrote, verbatim
    requested_at: datetime  # timezone-aware

    def __post_init__(self) -> None:
        problem = record_problem(self, reach_out_requests)
        if problem:
            raise ValueError(f"invalid reach-out request: {problem}")


Record = Union[Flag, ReachOut]
_TABLES = {Flag: conversation_flags, ReachOut: reach_out_requests}
_CHOICES = {"kind": FLAG_KINDS, "detected_by": DETECTORS, "contact_kind": CONTACT_KINDS}
_TIMES = ("flagged_at", "requested_at")


def record_problem(record: object, table: Table) -> Optional[str]:
    """What is wrong with a dataclass ``record`` as a row of ``table`` (its fields are columns), if anything."""
    for name, value in asdict(record).items():
        column = table.c[name]
        if value is None:
            if column.nullable:
                continue
            return f"{name} is required"
        if not isinstance(value, column.type.python_type):
            return f"{name} must be a {column.type.python_type.__name__}"
        if name in _CHOICES and value not in _CHOICES[name]:
            return f"{name} {value!r} is not one of {_CHOICES[name]}"
        length = getattr(column.type, "length", None)
        # Checked here because SQLite would store an over-long value that PostgreSQL refuses.
        if length and not 0 < len(value) <= length:
            return f"{name} must have 1 to {length} characters"
        if isinstance(value, datetime) and value.utcoffset() is None:
            return f"{name} must be timezone-aware"
    return None


@cache
def engine_for(url: str) -> Engine:
    """The engine (and its connection pool) for ``url``, one per URL for the whole process."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    connect_args = {}
    if parsed.get_driver_name() == "psycopg2":
        connect_args["connect_timeout"] = POSTGRES_CONNECT_TIMEOUT
    return create_engine(parsed, pool_pre_ping=True, connect_args=connect_args, future=True)


def _sqlite_engine(url: URL) -> Engine:
    engine = create_engine(url, pool_pre_ping=True, future=True)
    event.listen(engine, "connect", _sqlite_connected)
    # pysqlite sends no BEGIN before DDL, so migrations would not be atomic: SQLAlchemy sends it.
    event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN"))
    return engine


def _sqlite_connected(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    dbapi_connection.isolation_level = None  # transactions are begun by the "begin" event
    # WAL: other processes keep reading while one writes.
    dbapi_connection.execute("PRAGMA journal_mode=WAL")


@contextmanager
def begin(engine: Engine) -> Iterator[Connection]:
    """A transaction, committed on success; ``StoreUnavailable`` if the database can't be used."""
    try:
        with engine.begin() as connection:
            yield connection
    except DBAPIError as error:
        if not _unavailable(error):
            raise
        raise StoreUnavailable(f"clinic database {engine.url!r} unavailable: {error.orig}") from error


def _unavailable(error: DBAPIError) -> bool:
    # Constraint and data errors are bugs of the caller, not an outage: they propagate as is.
    return isinstance(error, (OperationalError, InterfaceError)) or error.connection_invalidated


def record_flag(engine: Engine, flag: Flag) -> int:
    """Store ``flag`` and return its id."""
    with begin(engine) as connection:
        result = connection.execute(conversation_flags.insert().values(to_row(flag)))
        return result.inserted_primary_key[0]


def record_all(engine: Engine, records: List[Record]) -> None:
    """Store flags and reach-out requests in one transaction: all of them or none."""
    with begin(engine) as connection:
        for record in records:
            connection.execute(_TABLES[type(record)].insert().values(to_row(record)))


def to_row(record: object) -> Dict[str, object]:
    """A dataclass ``record``'s values to insert, times in UTC (SQLite keeps no UTC offset)."""
    return {k: utc(v) if isinstance(v, datetime) else v for k, v in asdict(record).items()}


def flags_for(engine: Engine, conversation_id: str) -> List[Flag]:
    """The conversation's flags, oldest first."""
    return _records_for(engine, Flag, conversation_id)


def reach_outs_for(engine: Engine, conversation_id: str) -> List[ReachOut]:
    """The conversation's reach-out requests, oldest first."""
    return _records_for(engine, ReachOut, conversation_id)


def _records_for(engine: Engine, record_type: type, conversation_id: str) -> list:
    table = _TABLES[record_type]
    time_column = next(table.c[name] for name in _TIMES if name in table.c)
    query = (
        select(*[table.c[field.name] for field in fields(record_type)])
        .where(table.c.conversation_id == conversation_id)
        .order_by(time_column, table.c.id)
    )
    with begin(engine) as connection:
        rows = connection.execute(query).all()
    return [record_type(**from_row(row)) for row in rows]


def from_row(row: Row) -> Dict[str, object]:
    """A row's values, times timezone-aware in UTC whatever the backend."""
    return {k: as_utc(v) if isinstance(v, datetime) else v for k, v in row._asdict().items()}


def as_utc(moment: datetime) -> datetime:
    """A time read from the database, aware and in UTC."""
    # SQLite returns the naive UTC time to_row wrote; PostgreSQL an aware one.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def utc(moment: datetime) -> datetime:
    """An aware time given by a caller, in UTC, as it is stored and compared; ValueError if naive."""
    if moment.utcoffset() is None:
        raise ValueError(f"time {moment.isoformat()} must be timezone-aware")
    return moment.astimezone(timezone.utc)
