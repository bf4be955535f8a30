"""The tracker store that continues a long session in a new one: state carried, history kept, expiry kept."""

import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from rasa.shared.core.constants import ACTION_LISTEN_NAME
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    SessionStarted,
    SlotSet,
    UserUttered,
)

from clinic_assistant import tracker_store
from clinic_assistant.tracker_store import LAST_MESSAGE_AT, BoundedSQLTrackerStore

PROJECT = Path(__file__).resolve().parent.parent
LIMIT = 3


@pytest.fixture(scope="module")
def domain() -> Domain:
    return Domain.load(PROJECT / "domain.yml")


@pytest.fixture
def store(domain: Domain, tmp_path: Path) -> BoundedSQLTrackerStore:
    return BoundedSQLTrackerStore(domain=domain, host=f"sqlite:///{tmp_path / 'tracker.db'}", turn_limit=LIMIT)


async def one_turn(store: BoundedSQLTrackerStore, sender: str, text: str, *events) -> None:
    """A turn as Rasa's processor makes it: load, the visitor's message, the reply, listen, save."""
    tracker = await store.get_or_create_tracker(sender, append_action_listen=False)
    if not tracker.events:
        tracker.update(SessionStarted())
        tracker.update(ActionExecuted(ACTION_LISTEN_NAME))
    tracker.update(UserUttered(text, {"name": "symptoms", "confidence": 1.0}))
    for event in events:
        event.timestamp = time.time()  # made before the turn started; Rasa stamps events as they happen
        tracker.update(event)
    tracker.update(BotUttered(f"answer to {text}"))
    tracker.update(ActionExecuted(ACTION_LISTEN_NAME))
    await store.save(tracker)


def texts(tracker) -> list:
    return [event.text for event in tracker.events if isinstance(event, UserUttered)]


async def test_a_short_session_is_left_alone(store):
    for n in range(LIMIT - 1):
        await one_turn(store, "short", f"message {n}")
    tracker = await store.retrieve("short")
    assert texts(tracker) == ["message 0", "message 1"]
    assert sum(isinstance(event, SessionStarted) for event in tracker.events) == 1


async def test_the_limit_continues_the_session_with_its_state(store):
    await one_turn(store, "long", "message 0", SlotSet("more_offered", True), SlotSet("more_response", "utter_x"))
    await one_turn(store, "long", "message 1", SlotSet("reach_out_offered", True))
    form = [ActiveLoop("consultation_form"), SlotSet("requested_slot", "consult_name")]
    await one_turn(store, "long", "message 2", *form)

    tracker = await store.retrieve("long")
    assert texts(tracker) == [], "only the continuation is loaded"
    assert tracker.get_slot("more_offered") is True
    assert tracker.get_slot("more_response") == "utter_x"
    assert tracker.get_slot("reach_out_offered") is True
    assert tracker.get_slot("requested_slot") == "consult_name"
    assert tracker.active_loop_name == "consultation_form"
    assert tracker.latest_action_name == ACTION_LISTEN_NAME
    assert tracker.get_slot("clinic_name") == "the Crane Center", "slots at their initial value stay so"

    await one_turn(store, "long", "message 3")
    full = await store.retrieve_full_tracker("long")
    assert texts(full) == [f"message {n}" for n in range(4)], "the transcript keeps every message"
    assert texts(await store.retrieve("long")) == ["message 3"]


async def test_every_session_stays_within_the_limit(store):
    for n in range(10):
        await one_turn(store, "longer", f"message {n}")
        assert len(texts(await store.retrieve("longer"))) < LIMIT
    full = await store.retrieve_full_tracker("longer")
    assert texts(full) == [f"message {n}" for n in range(10)]


async def test_a_turn_in_progress_is_never_cut(store):
    for n in range(LIMIT):
        await one_turn(store, "busy", f"message {n}")
    tracker = await store.retrieve("busy")
    tracker.update(UserUttered("one more", {"name": "symptoms", "confidence": 1.0}))
    await store.save(tracker)  # saved before the reply, as Rasa does when an action fails
    tracker = await store.retrieve("busy")
    assert texts(tracker) == ["one more"]
    assert not isinstance(tracker.events[-1], SessionStarted)


async def test_the_continuation_carries_the_time_of_the_last_message(store):
    for n in range(LIMIT):
        await one_turn(store, "marked", f"message {n}")
    tracker = await store.retrieve("marked")
    started = [event for event in tracker.events if isinstance(event, SessionStarted)][-1]
    full = await store.retrieve_full_tracker("marked")
    last = [event for event in full.events if isinstance(event, UserUttered)][-1]
    assert started.metadata[LAST_MESSAGE_AT] == pytest.approx(last.timestamp)


async def test_a_continuation_past_the_session_expiry_is_ended(store, domain):
    for n in range(LIMIT):
        await one_turn(store, "idle", f"message {n}")
    tracker = await store.retrieve("idle")
    assert tracker.applied_events(), "a fresh continuation is a session in progress"

    expiry = domain.session_config.session_expiration_time * 60
    later = time.time() + expiry + 5
    tracker = await _retrieve_at(store, "idle", later)
    assert tracker.applied_events() == [], "Rasa starts a new session on an empty one"
    assert tracker.get_slot("requested_slot") is None


async def test_a_continuation_with_a_message_expires_the_usual_way(store, domain):
    for n in range(LIMIT):
        await one_turn(store, "spoken", f"message {n}")
    await one_turn(store, "spoken", "message after")
    later = time.time() + domain.session_config.session_expiration_time * 60 + 5
    tracker = await _retrieve_at(store, "spoken", later)
    assert texts(tracker) == ["message after"], "expiry is then Rasa's own, from the visitor's last message"


async def test_no_limit_keeps_one_session(domain, tmp_path):
    store = BoundedSQLTrackerStore(domain=domain, host=f"sqlite:///{tmp_path / 'plain.db'}", turn_limit=0)
    for n in range(6):
        await one_turn(store, "plain", f"message {n}")
    assert len(texts(await store.retrieve("plain"))) == 6


async def _retrieve_at(store, sender, moment):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tracker_store, "time", SimpleNamespace(time=lambda: moment))
        return await store.retrieve(sender)


async def test_messages_a_form_takes_count_too(store):
    """Rasa folds a form's happy path out of applied_events(); the limit counts those messages all the same."""
    form = "consultation_form"
    opened = [ActionExecuted(form), ActiveLoop(form), SlotSet("requested_slot", "consult_name")]
    await one_turn(store, "form", "book", *opened)
    for n, slot in enumerate(["consult_phone", "consult_email"]):
        await one_turn(store, "form", f"answer {n}", ActionExecuted(form), SlotSet("requested_slot", slot))
    tracker = await store.retrieve("form")
    assert texts(tracker) == []
    assert tracker.active_loop_name == form and tracker.get_slot("requested_slot") == "consult_email"


@pytest.fixture(params=["sqlite", "postgresql"])
def any_store(request, domain: Domain, tmp_path: Path) -> BoundedSQLTrackerStore:
    if request.param == "sqlite":
        return BoundedSQLTrackerStore(domain=domain, host=f"sqlite:///{tmp_path / 'tracker.db'}", turn_limit=LIMIT)
    return BoundedSQLTrackerStore(domain=domain, host=request.getfixturevalue("postgres_url"), turn_limit=LIMIT)


@pytest.mark.parametrize("sender", ["x\udc00", "nul\x00inside"], ids=["lone-surrogate", "nul"])
async def test_a_value_the_database_cannot_take_fails_that_turn_and_never_exits(any_store, sender):
    """Rasa's own store turns any ValueError into 'schema missing' and exits the server; this one raises."""
    try:
        await one_turn(any_store, sender, "what is crps")
    except SystemExit:  # pragma: no cover - the failure this test exists for
        pytest.fail("the tracker store exited the process")
    except Exception:
        pass  # the turn fails; the caller answers it (the channels refuse such values before they get here)
    await one_turn(any_store, "after-the-bad-one", "what is crps")
    assert (await any_store.retrieve("after-the-bad-one")) is not None
