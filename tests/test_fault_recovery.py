"""The real run command under REST load, each of its processes killed with SIGKILL in turn: the supervisor starts
it again, the service answers within 30 s of each kill, and every message that got a 200 reply is in the
tracker store."""

import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Dict, List, Set, Tuple

from clinic_assistant.processes import answers, free_port
from clinic_assistant.settings import PROJECT_DIR
from tests.test_run_command import STOP_SECONDS, run_command_env
from tests.webhook_receiver import WebhookReceiver

KILL_ORDER = ("rasa", "actions", "web", "console", "delivery")
RECOVERY_SECONDS = 30
CONVERSATIONS = 4  # threads, each posting one message after another
MESSAGES_PER_CONVERSATION = 8  # then a thread starts a new conversation (and Rasa's session start with it)
THINK_SECONDS = 0.1  # between a reply and the next message
QUESTIONS = ("what is crps", "what are the symptoms", "how is it treated", "does ketamine help", "thanks")


class RestLoad:
    """Concurrent REST conversations that record every message answered 200."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.answered: List[Tuple[str, str]] = []  # (sender, text)
        self.failed = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._converse, args=(n,), daemon=True) for n in range(CONVERSATIONS)]

    def __enter__(self) -> "RestLoad":
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(60)

    def count(self) -> int:
        with self._lock:
            return len(self.answered)

    def _converse(self, n: int) -> None:
        run = secrets.token_hex(3)
        turn = 0
        while not self._stop.is_set():
            sender = f"fault-{run}-{n}-{turn // MESSAGES_PER_CONVERSATION}"
            text = f"{QUESTIONS[turn % len(QUESTIONS)]} {n}-{turn}"
            if post(self.url, self.token, sender, text) == 200:
                with self._lock:
                    self.answered.append((sender, text))
                self._stop.wait(THINK_SECONDS)
            else:
                with self._lock:
                    self.failed += 1
                self._stop.wait(0.2)  # the server is down or restarting: don't spin
            turn += 1


def post(url: str, token: str, sender: str, text: str) -> int:
    request = urllib.request.Request(
        url, data=json.dumps({"sender": sender, "message": text}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            reply.read()
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def stop(supervisor: subprocess.Popen) -> None:
    """After a failure too: SIGTERM first, so that the supervisor stops its processes itself."""
    if supervisor.poll() is None:
        supervisor.send_signal(signal.SIGTERM)
        try:
            supervisor.wait(STOP_SECONDS + 5)
        except subprocess.TimeoutExpired:
            supervisor.kill()
            supervisor.wait()


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout:.0f} s"
        time.sleep(0.2)


def read_status(var_dir: Path) -> dict:
    try:
        return json.loads((var_dir / "supervisor.json").read_text())
    except FileNotFoundError:
        return {"processes": {}}


def restarted(var_dir: Path, key: str, old_pid: int) -> bool:
    """Running again under a new pid and, if it serves something, answering its health URL."""
    entry = read_status(var_dir)["processes"][key]
    if entry["state"] != "ready" or entry["pid"] in (None, old_pid):
        return False
    return entry["health_url"] is None or answers(entry["health_url"], timeout=5)


def stored_user_texts(tracker_db: Path, senders: Set[str]) -> Dict[str, Set[str]]:
    """Each conversation's user messages in Rasa's tracker store (stored under ``rest-<sender>`` or ``sender``)."""
    texts: Dict[str, Set[str]] = {}
    with sqlite3.connect(tracker_db) as db:
        for sender in senders:
            rows = db.execute(
                "SELECT data FROM events WHERE type_name = 'user' AND sender_id IN (?, 'rest-' || ?)",
                (sender, sender),
            ).fetchall()
            texts[sender] = {json.loads(data).get("text") for (data,) in rows}
    return texts


def test_each_process_killed_under_load_is_restarted_and_no_answered_message_is_lost(
    trained_model: Path, tmp_path: Path
):
    ports = {name: free_port() for name in ("rasa", "actions", "web", "console")}
    token = secrets.token_urlsafe(16)
    with WebhookReceiver(secrets.token_hex(16)) as clinic:
        env = run_command_env(tmp_path, ports, token)
        env.update({
            "CLINIC_WEBHOOK_URL": clinic.url, "CLINIC_WEBHOOK_SECRET": clinic.secret, "DELIVERY_POLL_SECONDS": "0.5",
            # The load sends faster than one visitor may; limits are not what this test is about.
            "REST_MAX_MESSAGES_PER_MINUTE": "0", "REST_MAX_MESSAGES_PER_ADDRESS_PER_MINUTE": "0",
        })
        supervisor = subprocess.Popen([sys.executable, "-m", "clinic_assistant", "run"], cwd=PROJECT_DIR, env=env)
        try:
            recoveries, answered, failed = kill_each_under_load(tmp_path, ports["rasa"], token)
            supervisor.send_signal(signal.SIGTERM)
            assert supervisor.wait(STOP_SECONDS + 5) == 0
        finally:
            stop(supervisor)
    print(f"recovery after SIGKILL, seconds: {recoveries}; {len(answered)} messages answered, {failed} failed")
    assert all(took <= RECOVERY_SECONDS for took in recoveries.values())
    assert len(answered) >= 20, "too little load to show anything"
    stored = stored_user_texts(tmp_path / "tracker.db", {sender for sender, _ in answered})
    lost = [(sender, text) for sender, text in answered if text not in stored[sender]]
    assert not lost, f"{len(lost)} of {len(answered)} answered messages missing from the tracker store: {lost[:5]}"


def all_ready(var_dir: Path) -> bool:
    processes = read_status(var_dir)["processes"]
    return processes.keys() >= set(KILL_ORDER) and all(entry["state"] == "ready" for entry in processes.values())


def kill_each_under_load(var_dir: Path, rasa_port: int, token: str) -> Tuple[Dict[str, float], list, int]:
    """Once every process is ready, kill each in turn under load: the seconds until each answered again (and the
    service with it), the messages answered 200 and the number of failed ones."""
    url = f"http://127.0.0.1:{rasa_port}/webhooks/rest/webhook"
    wait_for(lambda: all_ready(var_dir), 300, "every process ready")
    recoveries: Dict[str, float] = {}
    with RestLoad(url, token) as load:
        wait_for(lambda: load.count() >= 5, 60, "the load answered")
        for key in KILL_ORDER:
            old_pid = read_status(var_dir)["processes"][key]["pid"]
            os.kill(old_pid, signal.SIGKILL)
            killed_at = time.monotonic()
            wait_for(lambda: restarted(var_dir, key, old_pid), RECOVERY_SECONDS, f"{key} restarted")  # noqa: B023
            probe = f"probe-{secrets.token_hex(4)}"
            wait_for(lambda: post(url, token, probe, "what is crps") == 200, RECOVERY_SECONDS, "REST answers")  # noqa: B023
            recoveries[key] = round(time.monotonic() - killed_at, 1)
            answered_before = load.count()
            wait_for(lambda: load.count() > answered_before, RECOVERY_SECONDS, "the load answered again")  # noqa: B023
        statuses = read_status(var_dir)["processes"]
        assert all(statuses[key]["restarts"] == 1 for key in KILL_ORDER), statuses
    return recoveries, list(load.answered), load.failed
