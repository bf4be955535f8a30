"""What the staff console reads and writes: the review queue, transcripts, tags, notes, reviews, corrections,
requests' statuses, the audit log and the dashboard.

The queue reads ``conversations``, an index the console's indexer keeps from Rasa's tracker store
(``clinic_assistant.console.indexer``); transcripts are read live from the tracker. Like ``db``, every
function raises ``StoreUnavailable`` when a database can't be used and ``ValueError`` for invalid values.
Times are stored in UTC and returned aware, in UTC.
"""

import base64
import binascii
import csv
import io
import json
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field, fields
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Set, Tuple

import yaml
from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    exists,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.sql import ColumnElement, Select

from clinic_assistant.console.display import visible
from clinic_assistant.console.masking import NAME_SLOTS, PLACEHOLDERS, mask_contacts, redact
from clinic_assistant.store.db import Flag, as_utc, begin, flags_for, utc
from clinic_assistant.store.tables import (
    FLAG_KINDS,
    PRIORITY_FLAGGED,
    PRIORITY_OPEN_REQUEST,
    PRIORITY_OTHER,
    PRIORITY_REVIEWED,
    PRIORITY_UNSURE,
    REQUEST_KINDS,
    STAFF_REQUEST_STATUSES,
    audit_log,
    consultation_requests,
    conversation_flags,
    conversation_intents,
    conversation_messages,
    conversation_notes,
    conversation_tags,
    conversations,
    handoff_requests,
    outbox,
    reach_out_requests,
    request_status_events,
)
from clinic_assistant.store.tables import corrections as corrections_table

# Rasa 3.6's SQLTrackerStore table, as the console reads it (it never writes it, retention aside).
TRACKER_EVENTS = Table(
    "events",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("sender_id", String(255), nullable=False, index=True),
    Column("type_name", String(255), nullable=False),
    Column("timestamp", Float),
    Column("intent_name", String(255)),
    Column("action_name", String(255)),
    Column("data", Text),
)

FALLBACK_INTENT = "nlu_fallback"
# What action_clarify answers when it did not understand.
FALLBACK_REPLIES = ("utter_clarify", "utter_not_understood")
LOW_CONFIDENCE = 0.6
FLAG_FILTERS = (*FLAG_KINDS, "any")
REVIEW_FILTERS = ("reviewed", "unreviewed")
MAX_TAG_CHARS = 64
MAX_NOTE_CHARS = 10_000
MAX_DETAIL_CHARS = 500
# Any constant: the PostgreSQL advisory lock serializing writers of the conversation index.
_INDEX_LOCK = 7_310_005
_CHUNK = 500  # ids per IN (...): well below SQLite's bound-parameter limit


class ConversationNotFound(LookupError):
    """No conversation has this id (in the tracker store, or in the console's index)."""

    def __init__(self, conversation_id: str) -> None:
        super().__init__(f"No conversation {conversation_id}")
        self.conversation_id = conversation_id


class RequestNotFound(LookupError):
    """No request of this kind has this id."""

    def __init__(self, kind: str, request_id: int) -> None:
        super().__init__(f"No {kind} request {request_id}")
        self.kind = kind
        self.request_id = request_id


# ---- Queue ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueueFilters:
    """The queue's filters, all optional. Dates are UTC days of the conversation's last message (inclusive)."""

    date_from: Optional[date] = None
    date_to: Optional[date] = None
    channel: Optional[str] = None
    flag: Optional[str] = None  # "crisis", "emergency" or "any"
    intent: Optional[str] = None
    review: Optional[str] = None  # "reviewed" or "unreviewed" (reviewed, then something new happened)
    tag: Optional[str] = None
    text: Optional[str] = None  # words in any message: PostgreSQL full text search; SQLite: a substring

    def __post_init__(self) -> None:
        if self.flag is not None and self.flag not in FLAG_FILTERS:
            raise ValueError(f"flag {self.flag!r} is not one of {FLAG_FILTERS}")
        if self.review is not None and self.review not in REVIEW_FILTERS:
            raise ValueError(f"review {self.review!r} is not one of {REVIEW_FILTERS}")


@dataclass(frozen=True)
class QueueRow:
    conversation_id: str
    channel: str
    started_at: datetime
    last_at: datetime
    user_turns: int
    fallbacks: int
    low_confidence: int
    flag_kind: Optional[str]
    open_requests: int
    reviewed_at: Optional[datetime]
    priority: int  # PRIORITY_* of tables.py: 0 flagged ... 4 reviewed
    tags: List[str]
    first_message: str  # the first patient message, verbatim (contacts unmasked)


@dataclass(frozen=True)
class QueuePage:
    rows: List[QueueRow]
    next_after: Optional[str]  # the cursor of the next page, None on the last one


_QUEUE_COLUMNS = [conversations.c[f.name] for f in fields(QueueRow) if f.name not in ("tags", "first_message")]


def queue(engine: Engine, filters: QueueFilters, after: Optional[str] = None, limit: int = 50) -> QueuePage:
    """The conversations matching ``filters``, most urgent first (priority, newest message, id), ``limit`` per page.

    Keyset pagination: ``after`` is the ``next_after`` of the previous page; ValueError if it is not one.
    """
    if not 1 <= limit <= 500:
        raise ValueError("limit must be between 1 and 500")
    cursor = _decode_cursor(after) if after else None
    with begin(engine) as connection:
        conditions = _filter_conditions(filters, connection.dialect.name)
        rows = connection.execute(_page_query(conditions, cursor, limit + 1)).all()
        page = rows[:limit]
        ids = [row.conversation_id for row in page]
        tags, first = _tags_of(connection, ids), _first_messages(connection, ids)
    queue_rows = [
        QueueRow(
            **_aware(row._asdict()),
            tags=tags.get(row.conversation_id, []),
            first_message=first.get(row.conversation_id, ""),
        )
        for row in page
    ]
    next_after = _encode_cursor(page[-1]) if len(rows) > limit else None
    return QueuePage(queue_rows, next_after)


def _page_query(conditions: List[ColumnElement], cursor: Optional[Tuple[int, datetime, str]], limit: int) -> Select:
    # Three index range scans instead of one OR: each stops after `limit` rows, however deep the page.
    c = conversations.c
    order = (c.priority, c.last_at.desc(), c.conversation_id)
    if cursor is None:
        return select(*_QUEUE_COLUMNS).where(*conditions).order_by(*order).limit(limit)
    priority, last_at, conversation_id = cursor
    parts = [
        [c.priority == priority, c.last_at == last_at, c.conversation_id > conversation_id],
        [c.priority == priority, c.last_at < last_at],
        [c.priority > priority],
    ]
    subqueries = [
        select(*_QUEUE_COLUMNS).where(*conditions, *part).order_by(*order).limit(limit).subquery()
        for part in parts
    ]
    union = select(*subqueries[0].c).union_all(*[select(*s.c) for s in subqueries[1:]]).subquery()
    return select(*union.c).order_by(union.c.priority, union.c.last_at.desc(), union.c.conversation_id).limit(limit)


def _filter_conditions(filters: QueueFilters, dialect: str) -> List[ColumnElement]:
    c = conversations.c
    conditions = []
    if filters.date_from:
        conditions.append(c.last_at >= _day_start(filters.date_from))
    if filters.date_to:
        conditions.append(c.last_at < _day_start(filters.date_to + timedelta(days=1)))
    if filters.channel:
        conditions.append(c.channel == filters.channel)
    if filters.flag:
        conditions.append(c.flag_kind.isnot(None))
        if filters.flag != "any":
            # flag_kind holds the gravest kind: a crisis conversation may have emergency flags too.
            flags = conversation_flags.c
            conditions.append(
                exists().where(flags.conversation_id == c.conversation_id, flags.kind == filters.flag)
            )
    if filters.intent:
        intents = conversation_intents.c
        with_intent = select(intents.conversation_id).where(intents.intent == filters.intent)
        conditions.append(c.conversation_id.in_(with_intent))
    if filters.review:
        reviewed = filters.review == "reviewed"
        conditions.append(c.priority == PRIORITY_REVIEWED if reviewed else c.priority < PRIORITY_REVIEWED)
    if filters.tag:
        tags = conversation_tags.c
        conditions.append(c.conversation_id.in_(select(tags.conversation_id).where(tags.tag == filters.tag)))
    if filters.text and filters.text.strip():
        conditions.append(c.conversation_id.in_(_text_search(filters.text.strip(), dialect)))
    return conditions


def _text_search(text: str, dialect: str) -> Select:
    messages = conversation_messages.c
    if dialect == "postgresql":
        # The same expression as the GIN index of migration 0005, so the index is used.
        english = literal_column("'english'::regconfig")
        matches = func.to_tsvector(english, messages.text).op("@@")(func.plainto_tsquery(english, text))
    else:
        # Small installs on SQLite: a case-insensitive (ASCII) substring, no index.
        escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        matches = messages.text.like(f"%{escaped}%", escape="\\")
    return select(messages.conversation_id).where(matches)


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.utc)


def _encode_cursor(row: Row) -> str:
    values = [row.priority, as_utc(row.last_at).isoformat(), row.conversation_id]
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def _decode_cursor(after: str) -> Tuple[int, datetime, str]:
    try:
        priority, last_at, conversation_id = json.loads(base64.urlsafe_b64decode(after + "=" * (-len(after) % 4)))
        moment = datetime.fromisoformat(last_at)
        if not isinstance(priority, int) or not isinstance(conversation_id, str):
            raise TypeError(after)
        return priority, utc(moment), conversation_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as bad:
        raise ValueError("not a queue cursor") from bad


def _tags_of(connection: Connection, ids: Sequence[str]) -> Dict[str, List[str]]:
    tags: Dict[str, List[str]] = defaultdict(list)
    query = select(conversation_tags.c.conversation_id, conversation_tags.c.tag)
    for chunk in chunks(ids):
        for row in connection.execute(query.where(conversation_tags.c.conversation_id.in_(chunk)).order_by("tag")):
            tags[row.conversation_id].append(row.tag)
    return tags


def _first_messages(connection: Connection, ids: Sequence[str]) -> Dict[str, str]:
    m = conversation_messages.c
    first = {}
    for chunk in chunks(ids):
        firsts = (
            select(func.min(m.id))
            .where(m.conversation_id.in_(chunk), m.speaker == "patient")
            .group_by(m.conversation_id)
        )
        query = select(m.conversation_id, m.text).where(m.id.in_(firsts))
        first.update({row.conversation_id: row.text for row in connection.execute(query)})
    return first


def channels(engine: Engine) -> List[str]:
    """The channels of indexed conversations, for the queue's filter menu."""
    return [c for c in _distinct(engine, conversations.c.channel) if c]


def intents(engine: Engine) -> List[str]:
    """The intents patients' messages had, for the queue's filter menu."""
    return _distinct(engine, conversation_intents.c.intent)


def tags(engine: Engine) -> List[str]:
    """Every tag in use, for the queue's filter menu."""
    return _distinct(engine, conversation_tags.c.tag)


def _distinct(engine: Engine, column: Column) -> List[str]:
    """The column's distinct values in order, one index probe per value (a "loose index scan").

    ``SELECT DISTINCT`` reads every row: with 100,000 conversations that alone cost the queue page
    about 100 ms. Both SQLite and PostgreSQL run this recursive query on the column's index instead.
    """
    first = select(func.min(column).label("value")).scalar_subquery()
    values = select(first.label("value")).cte("value_list", recursive=True)
    following = select(func.min(column)).where(column > values.c.value).scalar_subquery()
    values = values.union_all(select(following.label("value")).where(values.c.value.is_not(None)))
    query = select(values.c.value).where(values.c.value.is_not(None)).order_by(values.c.value)
    with begin(engine) as connection:
        return list(connection.execute(query).scalars())


# ---- Transcript ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    event_id: int  # the tracker event's id
    at: datetime
    speaker: str  # "patient" or "assistant"
    text: str  # verbatim (contacts unmasked)
    intent: Optional[str]  # patient turns
    confidence: Optional[float]  # patient turns
    response: Optional[str]  # patient: the retrieval key chosen ("symptoms/overview"); assistant: the utter action
    channel: Optional[str]  # patient turns: the input channel


@dataclass(frozen=True)
class Note:
    id: int
    author: str
    at: datetime
    text: str


@dataclass(frozen=True)
class RequestRow:
    """A patient's request as staff see it (contact details unmasked: the views mask them)."""

    kind: str  # one of REQUEST_KINDS
    id: int
    reference: str  # consultation requests' "CR-7K3P", else ""
    conversation_id: str
    channel: str
    name: str  # "" if not given
    contact: str  # phone number or e-mail address; "phone, e-mail" for consultation requests with both
    created_at: datetime
    status: str  # the newest status event's, "new" without one
    status_by: Optional[str]
    status_at: Optional[datetime]
    delivery_status: str  # consultation requests: the outbox's pending/delivered/failed; others ""
    delivery_attempts: int
    last_error: Optional[str]


# A conversation's requests in its transcript: the same fields as the requests page's rows.
RequestSummary = RequestRow


@dataclass(frozen=True)
class Transcript:
    conversation_id: str
    channel: str
    turns: List[Turn]
    slots: Dict[str, Any]  # each slot's last value (contacts unmasked)
    flags: List[Flag]
    requests: List[RequestSummary]
    tags: List[str]
    notes: List[Note]  # oldest first
    reviewed_at: Optional[datetime]
    reviewed_by: Optional[str]
    # Every name the patient gave the forms (each value the name slot held, the requests' names): masked wherever
    # they appear in the conversation until contact details are revealed.
    names: List[str] = field(default_factory=list)


def transcript(tracker: Engine, clinic: Engine, conversation_id: str) -> Transcript:
    """The conversation as the tracker store has it now, with what the clinic database knows of it."""
    events = TRACKER_EVENTS.c
    query = (
        select(events.id, events.type_name, events.timestamp, events.data)
        .where(events.sender_id == conversation_id, events.type_name.in_(("user", "bot", "slot")))
        .order_by(events.id)
    )
    with begin(tracker) as connection:
        rows = connection.execute(query).all()
    if not rows:
        raise ConversationNotFound(conversation_id)
    turns, slots, names = [], {}, []
    for row in rows:
        data = _event_data(row.data)
        if row.type_name == "slot" and "name" in data:
            slots[data["name"]] = data.get("value")
            names += _name_in_slot_event(data)
        elif row.type_name in ("user", "bot"):
            turns.append(turn_of(row.id, row.type_name, row.timestamp, data))
    return _with_clinic_data(clinic, conversation_id, turns, slots, names)


def _name_in_slot_event(data: Dict[str, Any]) -> List[str]:
    value = data.get("value")
    return [value] if data.get("name") in NAME_SLOTS and isinstance(value, str) and value.strip() else []


def known_names(
    clinic: Engine, conversation_ids: Sequence[str], tracker: Optional[Engine] = None
) -> Dict[str, List[str]]:
    """The names patients gave in these conversations, by conversation: the names on their requests and, with
    ``tracker``, every value the forms' name slot held (a corrected name, or one cleared after sending, included)."""
    names: Dict[str, List[str]] = defaultdict(list)
    with begin(clinic) as connection:
        for table in (consultation_requests, handoff_requests):
            for chunk in chunks(sorted(set(conversation_ids))):
                query = select(table.c.conversation_id, table.c.name).where(table.c.conversation_id.in_(chunk))
                for row in connection.execute(query):
                    names[row.conversation_id] += [row.name] if row.name else []
    if tracker is not None:
        for conversation_id, data in _slot_events(tracker, conversation_ids, NAME_SLOTS):
            names[conversation_id] += _name_in_slot_event(data)
    return dict(names)


def _slot_events(tracker: Engine, conversation_ids: Sequence[str], slots: Sequence[str]) -> Iterator[Tuple[str, Dict]]:
    events = TRACKER_EVENTS.c
    # A substring test first, so only the slot events that may name these slots are read and parsed.
    named = [events.data.contains(f'"{slot}"', autoescape=True) for slot in slots]
    with begin(tracker) as connection:
        for chunk in chunks(sorted(set(conversation_ids))):
            query = select(events.sender_id, events.data).where(
                events.sender_id.in_(chunk), events.type_name == "slot", or_(*named)
            )
            for row in connection.execute(query):
                yield row.sender_id, _event_data(row.data)


def _with_clinic_data(
    clinic: Engine, conversation_id: str, turns: List[Turn], slots: Dict[str, Any], names: List[str]
) -> Transcript:
    index = conversations.c
    notes = conversation_notes.c
    with begin(clinic) as connection:
        indexed = connection.execute(
            select(index.channel, index.reviewed_at, index.reviewed_by).where(index.conversation_id == conversation_id)
        ).first()
        note_rows = connection.execute(
            select(notes.id, notes.author, notes.at, notes.text)
            .where(notes.conversation_id == conversation_id)
            .order_by(notes.at, notes.id)
        ).all()
        tag_list = _tags_of(connection, [conversation_id]).get(conversation_id, [])
        request_rows = _request_rows(connection, conversation_id=conversation_id)
    channel = next((t.channel for t in turns if t.channel), None) or (indexed.channel if indexed else "")
    return Transcript(
        conversation_id=conversation_id,
        channel=channel,
        turns=turns,
        slots=slots,
        flags=flags_for(clinic, conversation_id),
        requests=request_rows,
        tags=tag_list,
        notes=[Note(**_aware(row._asdict())) for row in note_rows],
        reviewed_at=as_utc(indexed.reviewed_at) if indexed and indexed.reviewed_at else None,
        reviewed_by=indexed.reviewed_by if indexed else None,
        names=names + [row.name for row in request_rows if row.name],
    )


def _event_data(data: Optional[str]) -> Dict[str, Any]:
    try:
        value = json.loads(data or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def turn_of(event_id: int, type_name: str, timestamp: Optional[float], data: Dict[str, Any]) -> Turn:
    """A tracker ``user`` or ``bot`` event (its ``data`` JSON parsed) as a turn of the transcript."""
    at = datetime.fromtimestamp(timestamp or data.get("timestamp") or 0, timezone.utc)
    text = data.get("text") or ""
    if type_name == "bot":
        metadata = data.get("metadata") or {}
        return Turn(event_id, at, "assistant", text, None, None, metadata.get("utter_action"), metadata.get("channel"))
    parse = data.get("parse_data") or {}
    intent = parse.get("intent") or {}
    name = intent.get("name")
    selector = parse.get("response_selector") or {}
    chosen = (selector.get(name) if name else None) or selector.get("default") or {}
    response = (chosen.get("response") or {}).get("intent_response_key")
    # The default selector answers every message: its key only counts when it belongs to the intent.
    if response and name and not response.startswith(f"{name}/"):
        response = None
    return Turn(event_id, at, "patient", text, name, intent.get("confidence"), response, data.get("input_channel"))


# ---- Tags, notes, reviews ------------------------------------------------------------------------------------------


def tag(engine: Engine, conversation_id: str, tag: str, actor: str, now: Optional[datetime] = None) -> None:
    """Tag the conversation (tags are one line, spaces collapsed); tagging twice changes nothing."""
    tag = " ".join(tag.split())
    if not 0 < len(tag) <= MAX_TAG_CHARS:
        raise ValueError(f"a tag must have 1 to {MAX_TAG_CHARS} characters")
    row = {"conversation_id": conversation_id, "tag": tag, "tagged_by": actor, "tagged_at": _now(now)}
    with begin(engine) as connection:
        _require_indexed(connection, conversation_id)
        connection.execute(insert_for(connection, conversation_tags).values(row).on_conflict_do_nothing())


def untag(engine: Engine, conversation_id: str, tag: str, actor: str) -> None:
    """Remove the tag from the conversation, if it has it."""
    tags_c = conversation_tags.c
    with begin(engine) as connection:
        _require_indexed(connection, conversation_id)
        connection.execute(
            conversation_tags.delete().where(tags_c.conversation_id == conversation_id, tags_c.tag == tag)
        )


def storable(text: str) -> str:
    """``text`` without NUL characters, which PostgreSQL's text columns cannot hold (SQLite can)."""
    return text.replace("\x00", "")


def add_note(engine: Engine, conversation_id: str, text: str, actor: str, now: Optional[datetime] = None) -> int:
    """Add a staff note to the conversation; its id."""
    text = text.strip()
    if not 0 < len(text) <= MAX_NOTE_CHARS:
        raise ValueError(f"a note must have 1 to {MAX_NOTE_CHARS} characters")
    row = {"conversation_id": conversation_id, "author": actor, "at": _now(now), "text": storable(text)}
    with begin(engine) as connection:
        _require_indexed(connection, conversation_id)
        return connection.execute(conversation_notes.insert().values(row)).inserted_primary_key[0]


def mark_reviewed(engine: Engine, conversation_id: str, actor: str, now: Optional[datetime] = None) -> None:
    """The conversation was reviewed: out of the queue's way until something new happens in it."""
    with begin(engine) as connection:
        lock_index(connection)
        _require_indexed(connection, conversation_id)
        connection.execute(
            conversations.update()
            .where(conversations.c.conversation_id == conversation_id)
            .values(reviewed_at=_now(now), reviewed_by=actor)
        )
        refresh_conversations(connection, [conversation_id])


def _require_indexed(connection: Connection, conversation_id: str) -> None:
    query = select(conversations.c.conversation_id).where(conversations.c.conversation_id == conversation_id)
    if connection.execute(query).first() is None:
        raise ConversationNotFound(conversation_id)


# ---- Corrections ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Correction:
    id: int
    conversation_id: str
    message_id: int  # the tracker event id of the patient message
    text: str  # the patient's message, verbatim
    intent: str
    response: Optional[str]  # a retrieval intent's response key, e.g. "symptoms/overview"
    author: str
    at: datetime

    @property
    def training_intent(self) -> str:
        """The intent as NLU data names it: the response key for retrieval intents."""
        return self.response or self.intent


_INTENT_NAME = re.compile(r"[A-Za-z0-9_-]{1,255}")


def add_correction(
    engine: Engine,
    conversation_id: str,
    message_id: int,
    text: str,
    intent: str,
    response: Optional[str],
    actor: str,
    now: Optional[datetime] = None,
) -> int:
    """Record that patient message ``message_id`` meant ``intent`` (and ``response``); its id. The newest
    correction of a message is the one that counts."""
    if not text.strip():
        raise ValueError("the corrected message has no text")
    if not _INTENT_NAME.fullmatch(intent):
        raise ValueError(f"{intent!r} is not an intent name")
    prefix, slash, key = (response or "").partition("/")
    if response is not None and not (prefix == intent and slash and _INTENT_NAME.fullmatch(key)):
        raise ValueError(f"response {response!r} is not a response key of intent {intent!r}")
    row = {
        "conversation_id": conversation_id,
        "message_id": message_id,
        "text": storable(text),
        "intent": intent,
        "response": response,
        "author": actor,
        "at": _now(now),
    }
    with begin(engine) as connection:
        return connection.execute(corrections_table.insert().values(row)).inserted_primary_key[0]


def corrections(engine: Engine) -> List[Correction]:
    """Every correction, newest first."""
    table = corrections_table.c
    query = select(*[table[f.name] for f in fields(Correction)]).order_by(table.at.desc(), table.id.desc())
    with begin(engine) as connection:
        return [Correction(**_aware(row._asdict())) for row in connection.execute(query)]


def _current_corrections(engine: Engine) -> List[Correction]:
    # A message corrected twice: the newest correction wins.
    newest: Dict[Tuple[str, int], Correction] = {}
    for correction in corrections(engine):
        newest.setdefault((correction.conversation_id, correction.message_id), correction)
    return list(newest.values())


# Says, in the file itself, what the export changed.
EXPORT_NOTICE = (
    f"# Phone numbers, e-mail addresses and the names patients gave are replaced by {PLACEHOLDERS['phone']},\n"
    f"# {PLACEHOLDERS['email']} and {PLACEHOLDERS['name']}. Read every example before adding it to data/nlu/.\n"
)


def corrections_yaml(engine: Engine, tracker: Optional[Engine] = None) -> str:
    """The corrections as Rasa 3.x NLU training data (retrieval intents by response key), one example each, with
    contact details and the patients' names (those the forms collected, read from ``tracker`` if given, and those
    on requests) replaced by placeholders: the file is meant for the repository's data/."""
    current = _current_corrections(engine)
    names = known_names(engine, [c.conversation_id for c in current], tracker)
    examples: Dict[str, List[str]] = defaultdict(list)
    for correction in reversed(current):  # oldest first, as they were made
        line = training_text(correction.text, names.get(correction.conversation_id, ()))
        if normalise(line) not in {normalise(e) for e in examples[correction.training_intent]}:
            examples[correction.training_intent].append(line)
    lines = [EXPORT_NOTICE.rstrip("\n"), 'version: "3.1"', "nlu:"]
    for intent in sorted(examples):
        lines += [f"- intent: {intent}", "  examples: |", *(f"    - {text}" for text in examples[intent])]
    return "\n".join(lines) + "\n"


def training_text(text: str, names: Sequence[str] = ()) -> str:
    """A patient's message as a training example: contacts and ``names`` replaced by placeholders, on one line of
    printable text (a YAML block scalar cannot hold control characters)."""
    printable = "".join(ch for ch in text if ch.isprintable() or ch.isspace())
    return " ".join(redact(printable, names).split())


def untrained_corrections(engine: Engine, data_dir: Path, tracker: Optional[Engine] = None) -> List[Correction]:
    """The corrections not yet examples of their intent in the NLU data under ``data_dir`` (``data/nlu/*.yml``),
    newest first. Texts are compared normalised: case, spacing and entity annotations aside; as written or as
    exported (placeholders in place of contacts and names)."""
    known = nlu_examples(data_dir)
    current = _current_corrections(engine)
    names = known_names(engine, [c.conversation_id for c in current], tracker)

    def in_the_data(c: Correction) -> bool:
        forms = {normalise(c.text), normalise(training_text(c.text, names.get(c.conversation_id, ())))}
        return bool(forms & known.get(c.training_intent, set()))

    return [c for c in current if not in_the_data(c)]


def nlu_examples(data_dir: Path) -> Dict[str, Set[str]]:
    """Every NLU example under ``data_dir``, normalised, by intent (retrieval intents by response key)."""
    examples: Dict[str, Set[str]] = defaultdict(set)
    for path in sorted(Path(data_dir).rglob("*.yml")):
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
        for item in (content or {}).get("nlu", []) if isinstance(content, dict) else []:
            if isinstance(item, dict) and "intent" in item and isinstance(item.get("examples"), str):
                lines = [line.strip() for line in item["examples"].splitlines()]
                examples[item["intent"]].update(normalise(line[2:]) for line in lines if line.startswith("- "))
    return examples


_ANNOTATION = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")


def normalise(text: str) -> str:
    """A message as compared with training examples: entity annotations dropped, case and spacing ignored."""
    return " ".join(_ANNOTATION.sub(r"\1", text).casefold().split())


# ---- Requests ------------------------------------------------------------------------------------------------------


def requests(engine: Engine, kind: Optional[str] = None, status: Optional[str] = None) -> List[RequestRow]:
    """Patients' consultation, handoff and reach-out requests, newest first; only ``kind`` / ``status`` if given."""
    if kind is not None and kind not in REQUEST_KINDS:
        raise ValueError(f"kind {kind!r} is not one of {REQUEST_KINDS}")
    if status is not None and status not in STAFF_REQUEST_STATUSES:
        raise ValueError(f"status {status!r} is not one of {STAFF_REQUEST_STATUSES}")
    with begin(engine) as connection:
        rows = _request_rows(connection, kind=kind)
    return [row for row in rows if status is None or row.status == status]


def _request_rows(
    connection: Connection, kind: Optional[str] = None, conversation_id: Optional[str] = None
) -> List[RequestRow]:
    rows = []
    for each_kind, query in _request_queries().items():
        if kind not in (None, each_kind):
            continue
        if conversation_id is not None:
            query = query.where(literal_column("conversation_id") == conversation_id)
        found = connection.execute(query).all()
        statuses = newest_statuses(connection, each_kind, [row.id for row in found])
        for row in found:
            values = _aware(row._asdict())
            status, status_by, status_at = statuses.get(row.id, ("new", None, None))
            rows.append(RequestRow(kind=each_kind, status=status, status_by=status_by, status_at=status_at, **values))
    return sorted(rows, key=lambda row: (row.created_at, row.kind, row.id), reverse=True)


def _request_queries() -> Dict[str, Select]:
    consult, handoff, reach = consultation_requests.c, handoff_requests.c, reach_out_requests.c
    contact = func.coalesce(consult.phone + ", " + consult.email, consult.phone)
    return {
        "consultation": select(
            consult.id,
            consult.reference,
            consult.conversation_id,
            consult.channel,
            consult.name,
            contact.label("contact"),
            consult.created_at,
            func.coalesce(outbox.c.status, "").label("delivery_status"),
            func.coalesce(outbox.c.attempts, 0).label("delivery_attempts"),
            outbox.c.last_error,
        ).outerjoin(outbox, outbox.c.request_id == consult.id),
        "handoff": select(
            handoff.id,
            literal_column("''").label("reference"),
            handoff.conversation_id,
            handoff.channel,
            func.coalesce(handoff.name, "").label("name"),
            handoff.contact,
            handoff.created_at,
            literal_column("''").label("delivery_status"),
            literal_column("0").label("delivery_attempts"),
            literal_column("NULL").label("last_error"),
        ),
        "reach_out": select(
            reach.id,
            literal_column("''").label("reference"),
            reach.conversation_id,
            reach.channel,
            literal_column("''").label("name"),
            reach.contact,
            reach.requested_at.label("created_at"),
            literal_column("''").label("delivery_status"),
            literal_column("0").label("delivery_attempts"),
            literal_column("NULL").label("last_error"),
        ),
    }


def newest_statuses(
    connection: Connection, kind: str, request_ids: Sequence[int]
) -> Dict[int, Tuple[str, str, datetime]]:
    """The newest status event of each request: (status, actor, at)."""
    events = request_status_events.c
    statuses = {}
    for chunk in chunks(request_ids):
        newest = (
            select(func.max(events.id))
            .where(events.request_kind == kind, events.request_id.in_(chunk))
            .group_by(events.request_id)
        )
        query = select(events.request_id, events.status, events.actor, events.at).where(events.id.in_(newest))
        statuses.update({row.request_id: (row.status, row.actor, as_utc(row.at)) for row in connection.execute(query)})
    return statuses


_REQUEST_TABLES = {"consultation": consultation_requests, "handoff": handoff_requests, "reach_out": reach_out_requests}


def set_request_status(
    engine: Engine, kind: str, request_id: int, status: str, actor: str, now: Optional[datetime] = None
) -> None:
    """Give the request a new status (a new status event, as ``actor``); ``RequestNotFound``, ValueError."""
    if kind not in REQUEST_KINDS:
        raise ValueError(f"kind {kind!r} is not one of {REQUEST_KINDS}")
    if status not in STAFF_REQUEST_STATUSES:
        raise ValueError(f"status {status!r} is not one of {STAFF_REQUEST_STATUSES}")
    now = _now(now)
    table = _REQUEST_TABLES[kind]
    with begin(engine) as connection:
        lock_index(connection)
        conversation_id = connection.execute(
            select(table.c.conversation_id).where(table.c.id == request_id)
        ).scalar_one_or_none()
        if conversation_id is None:
            raise RequestNotFound(kind, request_id)
        add_status_event(connection, kind, request_id, status, actor, now)
        if kind == "consultation" and status != "new":
            # The `requests` command line shows the old status column: keep it telling the same story.
            requests_c = consultation_requests.c
            connection.execute(
                consultation_requests.update()
                .where(requests_c.id == request_id, requests_c.contacted_at.is_(None))
                .values(status="contacted", contacted_at=now)
            )
        refresh_conversations(connection, [conversation_id])


def add_status_event(
    connection: Connection, kind: str, request_id: int, status: str, actor: str, now: datetime
) -> None:
    """Record a request's new status in ``connection``'s transaction (the indexer picks it up)."""
    row = {"request_kind": kind, "request_id": request_id, "status": status, "actor": actor, "at": utc(now)}
    connection.execute(request_status_events.insert().values(row))


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def requests_csv(rows: Iterable[RequestRow]) -> str:
    """The requests as CSV with a header line; a cell a spreadsheet would run as a formula starts with "'"."""
    return _csv([f.name for f in fields(RequestRow)], (asdict(row) for row in rows))


def _csv(header: List[str], records: Iterable[Dict[str, Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for record in records:
        writer.writerow([_cell(record[name]) for name in header])
    return out.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    # Shown as in the console: no bidi override or control character can reorder or hide what a spreadsheet shows.
    text = visible(value.isoformat() if isinstance(value, datetime) else value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


# ---- Audit log -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    target: str
    detail: str


def audit(
    engine: Engine, actor: str, action: str, target: str, detail: str = "", now: Optional[datetime] = None
) -> int:
    """Append an entry to the audit log; its id. Contact details in ``detail`` are masked, long details cut, NUL
    characters written as ``⟨U+0000⟩``."""
    # PostgreSQL's text columns refuse NUL (a sender id may hold one): kept visible instead of failing the view.
    target, detail = target.replace("\x00", visible("\x00")), detail.replace("\x00", visible("\x00"))
    if not 0 < len(actor) <= 64 or not 0 < len(action) <= 64 or len(target) > 255:
        raise ValueError("audit actor and action need 1 to 64 characters, target at most 255")
    detail = mask_contacts(detail)[:MAX_DETAIL_CHARS]
    row = {"at": _now(now), "actor": actor, "action": action, "target": target, "detail": detail}
    with begin(engine) as connection:
        return connection.execute(audit_log.insert().values(row)).inserted_primary_key[0]


def audit_entries(engine: Engine, limit: int = 100, before_id: Optional[int] = None) -> List[AuditEntry]:
    """The newest ``limit`` entries (older than entry ``before_id`` if given), newest first."""
    log = audit_log.c
    query = select(*[log[f.name] for f in fields(AuditEntry)]).order_by(log.id.desc()).limit(limit)
    if before_id is not None:
        query = query.where(log.id < before_id)
    with begin(engine) as connection:
        return [AuditEntry(**_aware(row._asdict())) for row in connection.execute(query)]


def audit_csv(entries: Iterable[AuditEntry]) -> str:
    """The entries as CSV with a header line (formula-looking cells defused)."""
    return _csv([f.name for f in fields(AuditEntry)], (asdict(entry) for entry in entries))


# ---- Dashboard -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Dashboard:
    per_day_by_channel: List[Tuple[date, str, int]]  # conversations started each UTC day, by channel
    top_intents: List[Tuple[str, int]]  # patient messages per intent, the 10 most frequent
    fallback_rate: float  # share of patient turns the assistant did not understand (0 without turns)
    crisis_flags: int
    emergency_flags: int
    requests: int  # consultation, handoff and reach-out requests made
    contacted: int  # of those, the ones staff moved past "new"


def dashboard(engine: Engine, days: int = 30, now: Optional[datetime] = None) -> Dashboard:
    """Figures of the last ``days`` days (up to ``now``)."""
    since = _now(now) - timedelta(days=days)
    c, m, f = conversations.c, conversation_messages.c, conversation_flags.c
    with begin(engine) as connection:
        day = _utc_day(c.started_at, connection.dialect.name)
        per_day = connection.execute(
            select(day.label("day"), c.channel, func.count())
            .where(c.started_at >= since)
            .group_by(day, c.channel)
            .order_by(day, c.channel)
        ).all()
        top = connection.execute(
            select(m.intent, func.count().label("n"))
            .where(m.at >= since, m.speaker == "patient", m.intent.isnot(None))
            .group_by(m.intent)
            .order_by(literal_column("n").desc(), m.intent)
            .limit(10)
        ).all()
        turns, fallbacks = connection.execute(
            select(func.coalesce(func.sum(c.user_turns), 0), func.coalesce(func.sum(c.fallbacks), 0)).where(
                c.started_at >= since
            )
        ).one()
        flag_counts = dict(
            connection.execute(select(f.kind, func.count()).where(f.flagged_at >= since).group_by(f.kind)).all()
        )
        made = [row for row in _request_rows(connection) if row.created_at >= since]
    return Dashboard(
        per_day_by_channel=[(_as_date(row.day), row.channel, row[2]) for row in per_day],
        top_intents=[(row.intent, row.n) for row in top],
        fallback_rate=fallbacks / turns if turns else 0.0,
        crisis_flags=flag_counts.get("crisis", 0),
        emergency_flags=flag_counts.get("emergency", 0),
        requests=len(made),
        contacted=sum(row.status != "new" for row in made),
    )


def _utc_day(column: ColumnElement, dialect: str) -> ColumnElement:
    if dialect == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)  # SQLite stores the UTC time as text


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


# ---- The conversation index ----------------------------------------------------------------------------------------


def lock_index(connection: Connection) -> None:
    """Serialize writers of the conversation index (indexer processes, reviews, status changes, retention)
    until ``connection``'s transaction ends."""
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(_INDEX_LOCK)))
    else:
        # SQLite: take the write lock now; a read first would make a later write fail on a busy database.
        connection.exec_driver_sql("UPDATE index_watermarks SET last_id = last_id WHERE name = ''")


def refresh_conversations(connection: Connection, conversation_ids: Iterable[str]) -> None:
    """Recompute the index rows (counts, flag, open requests, priority) and intents of these conversations
    from the clinic database; conversations without a patient message get no row. Idempotent."""
    for chunk in chunks(sorted(set(conversation_ids))):
        _refresh(connection, chunk)


def _refresh(connection: Connection, ids: List[str]) -> None:
    stats = _message_stats(connection, ids)
    flags = _flag_stats(connection, ids)
    requests_open, requests_newest = _request_stats(connection, ids)
    c = conversations.c
    reviews = {
        row.conversation_id: row
        for row in connection.execute(
            select(c.conversation_id, c.reviewed_at).where(c.conversation_id.in_(ids))
        )
    }
    rows = []
    for conversation_id, values in stats.items():
        flag_kind, flagged_at = flags.get(conversation_id, (None, None))
        reviewed_at = reviews[conversation_id].reviewed_at if conversation_id in reviews else None
        news = [values["last_at"], flagged_at, requests_newest.get(conversation_id)]
        priority = _priority(values, flag_kind, requests_open.get(conversation_id, 0), reviewed_at, news)
        values.pop("intents")
        rows.append(
            {
                **values,
                "conversation_id": conversation_id,
                "flag_kind": flag_kind,
                "open_requests": requests_open.get(conversation_id, 0),
                "priority": priority,
            }
        )
    gone = [conversation_id for conversation_id in reviews if conversation_id not in stats]
    if gone:
        connection.execute(conversations.delete().where(c.conversation_id.in_(gone)))
    if rows:
        insert = insert_for(connection, conversations)
        updated = {name: insert.excluded[name] for name in rows[0] if name != "conversation_id"}
        connection.execute(insert.on_conflict_do_update(index_elements=["conversation_id"], set_=updated), rows)


def _priority(
    values: Dict[str, Any], flag_kind: Optional[str], open_requests: int, reviewed_at: Any, news: List[Any]
) -> int:
    if reviewed_at is not None and all(moment is None or as_utc(moment) <= as_utc(reviewed_at) for moment in news):
        return PRIORITY_REVIEWED
    if flag_kind:
        return PRIORITY_FLAGGED
    if open_requests:
        return PRIORITY_OPEN_REQUEST
    if values["fallbacks"] or values["low_confidence"]:
        return PRIORITY_UNSURE
    return PRIORITY_OTHER


def _message_stats(connection: Connection, ids: List[str]) -> Dict[str, Dict[str, Any]]:
    """Per conversation with a patient message: times, turns, fallbacks, low confidence turns, channel, intents."""
    m = conversation_messages.c
    query = (
        select(m.conversation_id, m.at, m.speaker, m.intent, m.confidence, m.response, m.channel)
        .where(m.conversation_id.in_(ids))
        .order_by(m.conversation_id, m.id)
    )
    by_conversation: Dict[str, List[Row]] = defaultdict(list)
    for row in connection.execute(query):
        by_conversation[row.conversation_id].append(row)
    stats = {}
    for conversation_id, messages in by_conversation.items():
        values = _stats_of(messages)
        if values["user_turns"]:
            stats[conversation_id] = values
    _sync_intents(connection, ids, {cid: values["intents"] for cid, values in stats.items()})
    return stats


def _stats_of(messages: List[Row]) -> Dict[str, Any]:
    turns = fallbacks = low = 0
    unsure_turn = False  # the current patient turn was counted as a fallback
    intent_names: Set[str] = set()
    for message in messages:
        if message.speaker == "patient":
            turns += 1
            unsure_turn = message.intent == FALLBACK_INTENT
            fallbacks += unsure_turn
            low += message.confidence is not None and message.confidence < LOW_CONFIDENCE
            if message.intent:
                intent_names.add(message.intent)
        elif message.response in FALLBACK_REPLIES and not unsure_turn:
            unsure_turn = True  # one patient turn counts once, however many replies said so
            fallbacks += 1
    patient_channels = [m.channel for m in messages if m.speaker == "patient" and m.channel]
    return {
        "channel": (patient_channels or [m.channel for m in messages if m.channel] or [""])[0],
        "started_at": as_utc(min(m.at for m in messages)),
        "last_at": as_utc(max(m.at for m in messages)),
        "user_turns": turns,
        "fallbacks": fallbacks,
        "low_confidence": low,
        "intents": intent_names,
    }


def _sync_intents(connection: Connection, ids: List[str], wanted: Dict[str, Set[str]]) -> None:
    ci = conversation_intents.c
    have: Dict[str, Set[str]] = defaultdict(set)
    for row in connection.execute(select(ci.conversation_id, ci.intent).where(ci.conversation_id.in_(ids))):
        have[row.conversation_id].add(row.intent)
    extra = [(cid, intent) for cid in ids for intent in have[cid] - wanted.get(cid, set())]
    missing = [{"conversation_id": cid, "intent": i} for cid in ids for i in wanted.get(cid, set()) - have[cid]]
    for cid, intent in extra:
        connection.execute(conversation_intents.delete().where(ci.conversation_id == cid, ci.intent == intent))
    if missing:
        connection.execute(insert_for(connection, conversation_intents).on_conflict_do_nothing(), missing)


def _flag_stats(connection: Connection, ids: List[str]) -> Dict[str, Tuple[str, datetime]]:
    """Per flagged conversation: the gravest kind ("crisis" before "emergency") and the newest flag's time."""
    f = conversation_flags.c
    query = select(f.conversation_id, f.kind, func.max(f.flagged_at)).where(f.conversation_id.in_(ids))
    found: Dict[str, Tuple[str, datetime]] = {}
    for conversation_id, kind, newest in connection.execute(query.group_by(f.conversation_id, f.kind)):
        kind_then, newest_then = found.get(conversation_id, (kind, newest))
        gravest = min(kind, kind_then, key=FLAG_KINDS.index)
        found[conversation_id] = (gravest, max(as_utc(newest), as_utc(newest_then)))
    return found


def _request_stats(connection: Connection, ids: List[str]) -> Tuple[Dict[str, int], Dict[str, datetime]]:
    """Per conversation: how many of its requests are not closed, and when the newest was made."""
    open_count: Dict[str, int] = defaultdict(int)
    newest: Dict[str, datetime] = {}
    for kind, table in _REQUEST_TABLES.items():
        made = table.c.requested_at if kind == "reach_out" else table.c.created_at
        found = connection.execute(
            select(table.c.id, table.c.conversation_id, made.label("made")).where(table.c.conversation_id.in_(ids))
        ).all()
        statuses = newest_statuses(connection, kind, [row.id for row in found])
        for row in found:
            open_count[row.conversation_id] += statuses.get(row.id, ("new",))[0] != "closed"
            made_at = as_utc(row.made)
            newest[row.conversation_id] = max(made_at, newest.get(row.conversation_id, made_at))
    return open_count, newest


# ---- Helpers -------------------------------------------------------------------------------------------------------


def insert_for(connection: Connection, table: Table) -> Any:
    """An INSERT of ``table`` with ``connection``'s dialect's ON CONFLICT clauses."""
    return (postgresql if connection.dialect.name == "postgresql" else sqlite).insert(table)


def chunks(items: Sequence[Any], size: int = _CHUNK) -> Iterator[List[Any]]:
    """``items`` in lists of at most ``size`` (for IN clauses)."""
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _now(now: Optional[datetime]) -> datetime:
    return utc(now) if now is not None else datetime.now(timezone.utc)


def _aware(values: Dict[str, Any]) -> Dict[str, Any]:
    return {k: as_utc(v) if isinstance(v, datetime) else v for k, v in values.items()}

