"""Staff console figures at clinic scale: 100,000 conversations in Rasa's tracker store on PostgreSQL.

What it measures, and why: the console must stay usable when a clinic has a year of conversations, so the
whole path is exercised as in production, not the queries alone. Synthetic conversations are written into
Rasa's SQL tracker store table ``events`` (COPY, Rasa-shaped JSON); safety flags and consultation/handoff
requests go into the clinic database through the store's own functions; the console's real indexer builds the
queue's index from the events (events/s); 30% of the conversations are marked reviewed; both databases are
VACUUM ANALYZEd. Then the real console app is served on loopback, an admin logs in, and page latencies are
taken over HTTP one request at a time (p50/p95/max): the queue's first page, its 50th page (following the
"Next page" links), a filtered queue, a one-week range, a search for a common and for a rare word, and
transcripts of random conversations (read live from the tracker store, a different one each request).
Targets: p95 under 200 ms for queue and transcript pages, under 500 ms for searches.

Alone: ``PYTHONPATH=. .venv/bin/python -m bench.console`` (needs the local PostgreSQL of the tests).
"""

import asyncio
import csv
import html
import io
import json
import random
import re
import secrets
import statistics
import sys
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

import aiohttp
from aiohttp import web
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import Engine, make_url

from bench.load import percentile
from clinic_assistant import settings
from clinic_assistant.console.app import create_app
from clinic_assistant.console.indexer import index_new_events
from clinic_assistant.processes import free_port
from clinic_assistant.store import review, staff
from clinic_assistant.store.consultations import (
    ConsultationRequest,
    HandoffRequest,
    record_handoff,
    submit_consultation,
)
from clinic_assistant.store.db import Flag, begin, engine_for, record_flag
from clinic_assistant.store.schema import upgrade
from clinic_assistant.store.tables import conversations

CONVERSATIONS = 100_000
REQUESTS = 100  # timed requests per page kind
WARM_UP = 3  # untimed requests per page kind first
DEEP_PAGE = 50
YEAR_START = datetime(2025, 1, 1, tzinfo=timezone.utc)
REVIEWED_AT = YEAR_START + timedelta(days=366)  # after every message: reviewed conversations leave the queue's way
WEEK = (date(2025, 6, 2), date(2025, 6, 8))
COMMON_WORD, RARE_WORD = "pain", "sympathectomy"
QUEUE_TARGET_MS, SEARCH_TARGET_MS = 200.0, 500.0
ADMIN, PASSWORD = "bench-admin", secrets.token_urlsafe(18)
SEED = 20250101

CHANNELS = (("rest", 0.5), ("socketio", 0.35), ("twilio_sms", 0.15))
MODEL_ID = "4f1e2d3c5b6a47988796a5b4c3d2e1f0"
# Patient questions by intent and the retrieval response that answers them ("" : a plain utter_<intent>).
TOPICS: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    "symptoms": ("symptoms/overview", (
        "what are the symptoms of crps", "my hand is burning and swollen, is that crps", "wat r the symptoms",
        "why does my skin change colour", "my foot feels cold all the time and the pain spreads",
    )),
    "treatment": ("treatment/overview", (
        "how is crps treated", "does physical therapy help with the pain", "what medications work for the pain",
        "is mirror therapy worth trying",
    )),
    "ketamine": ("ketamine/overview", (
        "does ketamine work better than opioids", "whats the evidence for ketamine",
        "what are the side effects of ketamine infusions", "can ketamine stop the pain for good",
    )),
    "crps": ("crps/what_is", (
        "what is crps", "is crps all in my head?", "why does the pain persist after the injury healed",
    )),
    "clinic": ("clinic/hours", ("when is the clinic open", "where is the clinic", "how do i book an appointment")),
    "limits": ("limits/cost", ("how much does it cost", "does insurance cover the treatment", "can you diagnose me")),
    "greet": ("", ("hi", "hello there", "good morning")),
    "thank": ("", ("thanks", "thank you, that helps")),
    "pain_distress": ("", ("the pain is so bad today i can barely sleep", "im exhausted from the pain")),
}
UNCLEAR = ("asdf", "can my cat get it", "what about the thing from before", "hmm", "the blue one")
RARE = ("sympathectomy", "bisphosphonates", "dysautonomia")
CRISIS_TEXT = "i cant take this pain anymore, i dont want to be alive"
FALLBACK_RATE, LOW_CONFIDENCE_RATE, RARE_RATE = 0.07, 0.10, 0.001
FLAGGED, CONSULTATION, HANDOFF, REVIEWED = 0.01, 0.01, 0.01, 0.30


@dataclass
class Turn:
    at: float  # epoch seconds
    text: str
    intent: str
    confidence: float
    response: str  # retrieval key, "" if none
    utter: str  # the bot's utter action
    reply: str


@dataclass
class Conversation:
    sender_id: str
    channel: str
    kind: str  # "plain", "flagged", "consultation" or "handoff"
    turns: List[Turn] = field(default_factory=list)


# ---- Throwaway databases -------------------------------------------------------------------------------------------


@contextmanager
def temporary_database() -> Iterator[str]:
    """A fresh database on the tests' PostgreSQL server (CLINIC_TEST_POSTGRES_URL), dropped afterwards."""
    server = make_url(settings.TEST_POSTGRES_URL)
    admin = create_engine(server, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}, future=True)
    name = f"clinic_bench_{secrets.token_hex(6)}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        engine_for(url).dispose()
        with admin.connect() as connection:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"), {"name": name}
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


# ---- Synthetic conversations ---------------------------------------------------------------------------------------


def synthetic_conversations(count: int, rng: random.Random) -> Iterator[Conversation]:
    """``count`` conversations started over 2025, oldest first, each 1 to 5 patient turns and the replies."""
    year = 365 * 86400
    starts = sorted(YEAR_START.timestamp() + rng.random() * year for _ in range(count))
    names, weights = zip(*CHANNELS, strict=True)
    for start in starts:
        roll = rng.random()
        kind = next((k for k, edge in _KIND_EDGES if roll < edge), "plain")
        conversation = Conversation(f"{rng.getrandbits(128):032x}", rng.choices(names, weights)[0], kind)
        at = start
        turns = rng.randint(1, 5)
        for number in range(turns):
            at += rng.uniform(15, 90)
            conversation.turns.append(_turn(rng, at, kind if number == turns - 1 else "plain"))
        yield conversation


_KIND_EDGES = (("flagged", FLAGGED), ("consultation", FLAGGED + CONSULTATION),
               ("handoff", FLAGGED + CONSULTATION + HANDOFF))


def _turn(rng: random.Random, at: float, kind: str) -> Turn:
    if kind == "flagged":
        return Turn(at, CRISIS_TEXT, "crisis", 1.0, "", "utter_crisis",
                    "I'm really sorry you're going through this. If you might act on these thoughts, call or text 988 "
                    "now, or 911 in an emergency.")
    if kind == "consultation":
        return Turn(at, "i would like to book a consultation", "request_consultation", 0.97, "",
                    "utter_consult_submitted", "Thank you: your request was sent to the clinic, which will call you.")
    if kind == "handoff":
        return Turn(at, "can i talk to a real person", "human_handoff", 0.95, "", "utter_handoff_requested",
                    "I've asked a member of the clinic's staff to contact you.")
    if rng.random() < FALLBACK_RATE:
        return Turn(at, rng.choice(UNCLEAR), "nlu_fallback", rng.uniform(0.2, 0.5), "", "utter_not_understood",
                    "Sorry, I didn't understand that. Could you say it another way?")
    intent = rng.choice(list(TOPICS))
    response, texts = TOPICS[intent]
    words = rng.choice(texts)
    if rng.random() < RARE_RATE:
        words += f" after my {rng.choice(RARE)}"
    confidence = rng.uniform(0.4, 0.6) if rng.random() < LOW_CONFIDENCE_RATE else rng.uniform(0.6, 1.0)
    utter = f"utter_{response or intent}"
    reply = f"Here is what the article says ({response or intent}): " + "CRPS is a chronic pain condition. " * 3
    return Turn(at, words, intent, confidence, response, utter, reply.strip())


# ---- Rasa 3.6 tracker events ---------------------------------------------------------------------------------------

# sender_id, type_name, timestamp, intent_name, action_name, data: a row of ``events``
EventRow = Tuple[str, str, float, Optional[str], Optional[str], str]


def tracker_events(conversation: Conversation, rng: random.Random) -> Iterator[EventRow]:
    """The events Rasa's SQLTrackerStore writes for ``conversation``, in order."""
    sender, start = conversation.sender_id, conversation.turns[0].at - rng.uniform(1, 10)
    yield _action(sender, start, "action_session_start")
    yield _event(sender, "session_started", start, None, None, {})
    yield _slot(sender, start, "clinic_name", "the Crane Center")
    yield _slot(sender, start, "clinic_hours", "Monday to Friday, 8 am to 5 pm")
    yield _action(sender, start, "action_listen")
    for turn in conversation.turns:
        yield _user(sender, turn, conversation.channel, rng)
        yield _action(sender, turn.at + 0.2, turn.utter)
        if conversation.kind == "consultation" and turn is conversation.turns[-1]:
            yield _slot(sender, turn.at + 0.3, "consult_name", "Pat Doe")
            yield _slot(sender, turn.at + 0.3, "consult_phone", "+18505550142")
        yield _event(sender, "bot", turn.at + 0.4, None, None, {
            "text": turn.reply, "metadata": {"utter_action": turn.utter, "model_id": MODEL_ID},
            "data": {k: None for k in ("elements", "quick_replies", "buttons", "attachment", "image", "custom")},
        })
        yield _action(sender, turn.at + 0.5, "action_listen")


def _event(sender: str, type_name: str, at: float, intent: Optional[str], action: Optional[str],
           values: Dict[str, Any]) -> EventRow:
    data = {"event": type_name, "timestamp": at, "metadata": {"model_id": MODEL_ID}, **values}
    return sender, type_name, at, intent, action, json.dumps(data)


def _action(sender: str, at: float, name: str) -> EventRow:
    values = {"name": name, "policy": "policy_1_TEDPolicy", "confidence": 0.98, "action_text": None,
              "hide_rule_turn": False}
    return _event(sender, "action", at, None, name, values)


def _slot(sender: str, at: float, name: str, value: Any) -> EventRow:
    return _event(sender, "slot", at, None, name, {"name": name, "value": value})


def _user(sender: str, turn: Turn, channel: str, rng: random.Random) -> EventRow:
    message_id = f"{rng.getrandbits(128):032x}"
    others = [{"name": name, "confidence": (1 - turn.confidence) / 2} for name in rng.sample(list(TOPICS), 2)]
    selector: Dict[str, Any] = {"all_retrieval_intents": [key.split("/")[0] for key, _ in TOPICS.values() if key]}
    if turn.response:
        selector[turn.intent] = {
            "response": {"responses": [{"text": turn.reply}], "confidence": 0.91,
                         "intent_response_key": turn.response, "utter_action": f"utter_{turn.response}"},
            "ranking": [{"intent_response_key": turn.response, "confidence": 0.91}],
        }
    parse_data = {
        "intent": {"name": turn.intent, "confidence": turn.confidence}, "entities": [], "text": turn.text,
        "message_id": message_id, "metadata": {},
        "intent_ranking": [{"name": turn.intent, "confidence": turn.confidence}, *others],
        "response_selector": selector,
    }
    values = {"text": turn.text, "parse_data": parse_data, "input_channel": channel, "message_id": message_id}
    return _event(sender, "user", turn.at, turn.intent, None, values)


# ---- Loading -------------------------------------------------------------------------------------------------------


@dataclass
class Loaded:
    events: int
    conversation_ids: List[str]
    special: List[Conversation]  # flagged, consultation and handoff conversations, for the clinic database
    copy_seconds: float


def load_tracker(tracker: Engine, count: int, rng: random.Random, chunk: int = 2000) -> Loaded:
    """Create Rasa's ``events`` table (its columns and sender_id index) and COPY ``count`` conversations into it."""
    started = time.perf_counter()
    review.TRACKER_EVENTS.create(tracker)
    events, ids, special, rows = 0, [], [], []
    raw = tracker.raw_connection()
    try:
        cursor = raw.cursor()
        for conversation in synthetic_conversations(count, rng):
            ids.append(conversation.sender_id)
            if conversation.kind != "plain":
                special.append(conversation)
            rows.extend(tracker_events(conversation, rng))
            if len(ids) % chunk == 0:
                events += _copy(cursor, rows)
                rows = []
        events += _copy(cursor, rows)
        raw.commit()
    finally:
        raw.close()
    return Loaded(events, ids, special, time.perf_counter() - started)


def _copy(cursor: Any, rows: List[EventRow]) -> int:
    buffer = io.StringIO()
    csv.writer(buffer).writerows(rows)  # None: an unquoted empty field, which COPY's CSV format reads as NULL
    buffer.seek(0)
    columns = "sender_id, type_name, timestamp, intent_name, action_name, data"
    cursor.copy_expert(f"COPY events ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)
    return len(rows)


def record_clinic_side(clinic: Engine, special: Iterable[Conversation]) -> Dict[str, int]:
    """What the action server stores for the flagged and requesting conversations, by the store's functions."""
    counts: Counter = Counter()
    for conversation in special:
        turn = conversation.turns[-1]
        at = datetime.fromtimestamp(turn.at, timezone.utc)
        cid, channel = conversation.sender_id, conversation.channel
        if conversation.kind == "flagged":
            record_flag(clinic, Flag(cid, channel, "crisis", "pattern", turn.text, at))
        elif conversation.kind == "consultation":
            request = ConsultationRequest(cid, channel, "Pat Doe", "+18505550142", "pat@example.com",
                                          "burning pain in my hand", "mornings", True, at)
            submit_consultation(clinic, request, at)
        else:
            record_handoff(clinic, HandoffRequest(cid, channel, "Pat Doe", "pat@example.com", "email",
                                                  "a nurse please", at))
        counts[conversation.kind] += 1
    return dict(counts)


def run_indexer(tracker: Engine, clinic: Engine) -> Tuple[int, int, float]:
    """The console's indexer until it has nothing left: (rows indexed, calls, seconds)."""
    started = time.perf_counter()
    total = calls = 0
    while True:
        calls += 1
        indexed = index_new_events(tracker, clinic)
        total += indexed
        if not indexed:
            return total, calls, time.perf_counter() - started


def mark_reviewed(clinic: Engine, conversation_ids: List[str], actor: str, at: datetime) -> None:
    """What ``review.mark_reviewed`` does, 500 conversations per transaction instead of one."""
    c = conversations.c
    for chunk in review.chunks(conversation_ids):
        with begin(clinic) as connection:
            review.lock_index(connection)
            connection.execute(
                conversations.update().where(c.conversation_id.in_(chunk)).values(reviewed_at=at, reviewed_by=actor)
            )
            review.refresh_conversations(connection, chunk)


def priorities(clinic: Engine) -> Dict[str, int]:
    """Indexed conversations by queue priority, to check the index against what was loaded."""
    names = ("flagged", "open_request", "unsure", "other", "reviewed")
    with begin(clinic) as connection:
        rows = connection.execute(select(conversations.c.priority, func.count()).group_by(conversations.c.priority))
        return {names[priority]: n for priority, n in rows}


def vacuum_analyze(url: str) -> None:
    with engine_for(url).execution_options(isolation_level="AUTOCOMMIT").connect() as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")


def timed(work: Any, *args: Any) -> Tuple[Any, float]:
    started = time.perf_counter()
    result = work(*args)
    return result, time.perf_counter() - started


# ---- Pages over HTTP -----------------------------------------------------------------------------------------------

NEXT_PAGE = re.compile(r'<a href="([^"]+)" rel="next">Next page</a>')
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


async def log_in(session: aiohttp.ClientSession, base: str) -> None:
    async with session.get(f"{base}/login") as reply:
        token = CSRF.search(await reply.text()).group(1)
    form = {"username": ADMIN, "password": PASSWORD, "csrf_token": token}
    async with session.post(f"{base}/login", data=form) as reply:
        await reply.read()
        if reply.status != 200 or reply.url.path != "/":
            raise RuntimeError(f"login failed: {reply.status} at {reply.url}")


async def deep_page_path(session: aiohttp.ClientSession, base: str, page: int) -> Tuple[str, int]:
    """The path of the queue's ``page``-th page (or its last), found by following its "Next page" links."""
    path, reached = "/", 1
    while reached < page:
        async with session.get(base + path) as reply:
            link = NEXT_PAGE.search(await reply.text())
        if link is None:
            break
        path, reached = html.unescape(link.group(1)), reached + 1
    return path, reached


async def measure(session: aiohttp.ClientSession, base: str, paths: List[str]) -> Dict[str, Any]:
    """Each path requested in turn after WARM_UP untimed requests of the first ones: latencies and statuses."""
    for path in paths[:WARM_UP]:
        async with session.get(base + path) as reply:
            first_page = await reply.text()
    latencies, statuses = [], Counter()
    for path in paths[WARM_UP:]:
        started = time.perf_counter()
        async with session.get(base + path, allow_redirects=False) as reply:
            await reply.read()
        latencies.append((time.perf_counter() - started) * 1000)
        statuses[str(reply.status)] += 1
    return {
        "requests": len(latencies),
        "p50_ms": statistics.median(latencies),
        "p95_ms": percentile(latencies, 0.95),
        "max_ms": max(latencies),
        "statuses": dict(statuses),
        "rows_on_page": None if paths[0].startswith("/conversations/") else first_page.count('<tr class="'),
    }


async def page_figures(tracker_url: str, clinic_url: str, transcript_ids: List[str], requests: int) -> dict:
    """Serve the console on a loopback port, log in, and time each kind of page."""
    app = create_app(tracker_url, clinic_url, session_key=secrets.token_bytes(32), index_seconds=None,
                     secure_cookie=False)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    try:
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=60)) as session:
            await log_in(session, base)
            deep, deep_page = await deep_page_path(session, base, DEEP_PAGE)
            same = WARM_UP + requests
            cases = {
                "queue_first_page": ["/"] * same,
                f"queue_page_{deep_page}": [deep] * same,
                "queue_filtered": ["/?channel=socketio&intent=ketamine&review=unreviewed"] * same,
                "queue_one_week": [f"/?date_from={WEEK[0]}&date_to={WEEK[1]}"] * same,
                "search_common_word": [f"/?text={COMMON_WORD}"] * same,
                "search_rare_word": [f"/?text={RARE_WORD}"] * same,
                "transcript": [f"/conversations/{cid}" for cid in transcript_ids[:same]],
            }
            return {name: await measure(session, base, paths) for name, paths in cases.items()}
    finally:
        await runner.cleanup()


# ---- The benchmark -------------------------------------------------------------------------------------------------


def console_figures(count: int = CONVERSATIONS, requests: int = REQUESTS) -> dict:
    """Load, index and review ``count`` conversations in throwaway databases, then time the console's pages."""
    started = time.perf_counter()
    rng = random.Random(SEED)
    with temporary_database() as tracker_url, temporary_database() as clinic_url:
        tracker, clinic = engine_for(tracker_url), engine_for(clinic_url)
        upgrade(clinic_url)
        loaded = load_tracker(tracker, count, rng)
        records, records_seconds = timed(record_clinic_side, clinic, loaded.special)
        indexed, calls, index_seconds = run_indexer(tracker, clinic)
        reviewed = rng.sample(loaded.conversation_ids, int(count * REVIEWED))
        _, review_seconds = timed(mark_reviewed, clinic, reviewed, ADMIN, REVIEWED_AT)
        _, vacuum_seconds = timed(lambda: [vacuum_analyze(url) for url in (tracker_url, clinic_url)])
        staff.create_user(clinic, ADMIN, PASSWORD, "admin", None)
        sample = rng.sample(loaded.conversation_ids, WARM_UP + requests)
        pages = asyncio.run(page_figures(tracker_url, clinic_url, sample, requests))
        figures = {
            "conversations": count,
            "tracker_events": loaded.events,
            "clinic_records": records,
            "indexed": {"rows": indexed, "calls": calls},
            "queue_priorities": priorities(clinic),
            "seconds": {
                "copy_events": loaded.copy_seconds,
                "clinic_records": records_seconds,
                "index": index_seconds,
                "review": review_seconds,
                "vacuum_analyze": vacuum_seconds,
            },
            "index_events_per_second": loaded.events / index_seconds,
            "pages": pages,
        }
    figures["seconds"]["total"] = time.perf_counter() - started
    return figures


def target_ms(page: str) -> float:
    return SEARCH_TARGET_MS if page.startswith("search") else QUEUE_TARGET_MS


def print_console(figures: dict) -> None:
    s = figures["seconds"]
    print(f"Staff console, {figures['conversations']:,} conversations ({figures['tracker_events']:,} tracker events) "
          f"on PostgreSQL: COPY {s['copy_events']:.0f} s, clinic records {s['clinic_records']:.0f} s "
          f"{figures['clinic_records']}, indexer {s['index']:.0f} s ({figures['index_events_per_second']:,.0f} "
          f"events/s), reviews {s['review']:.0f} s, VACUUM ANALYZE {s['vacuum_analyze']:.0f} s; "
          f"total {s['total']:.0f} s")
    print(f"  queue by priority: {figures['queue_priorities']}")
    header = f"{'page':<22} {'rows':>4} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7}  {'target p95':<11} {'met':<8}"
    print(f"  {header} statuses")
    for name, row in figures["pages"].items():
        target = target_ms(name)
        met = "met" if row["p95_ms"] < target and set(row["statuses"]) == {"200"} else "NOT MET"
        rows = "-" if row["rows_on_page"] is None else row["rows_on_page"]
        print(f"  {name:<22} {rows:>4} {row['p50_ms']:>7.1f} {row['p95_ms']:>7.1f} "
              f"{row['max_ms']:>7.1f}  < {target:<9.0f} {met:<8} {row['statuses']}")


if __name__ == "__main__":
    print_console(console_figures(int(sys.argv[1]) if len(sys.argv) > 1 else CONVERSATIONS))
