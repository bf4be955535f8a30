"""Shared fixtures: one trained model per run, one running assistant per run."""

import json
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path
from typing import Iterator, List

import pytest

from clinic_assistant.processes import assistant, free_port
from clinic_assistant.training import ensure_trained_model

TESTS_DIR = Path(__file__).parent


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """Trained once per run; reused as is when no training input changed."""
    return ensure_trained_model()


class RestClient:
    """Talks to the assistant's REST channel the way an integration would."""

    def __init__(self, base_url: str, tracker_db: Path) -> None:
        self.url = f"{base_url}/webhooks/rest/webhook"
        self.tracker_db = tracker_db

    def user_events(self, sender: str) -> List[dict]:
        """What Rasa's tracker store recorded of this conversation's user turns."""
        with sqlite3.connect(self.tracker_db) as db:
            rows = db.execute(
                "SELECT data FROM events WHERE sender_id = ? AND type_name = 'user' ORDER BY id", (sender,)
            ).fetchall()
        return [json.loads(row[0]) for row in rows]

    def post_raw(self, body: bytes, content_type: str = "application/json") -> "tuple[int, bytes]":
        request = urllib.request.Request(self.url, data=body, headers={"Content-Type": content_type})
        try:
            with urllib.request.urlopen(request, timeout=60) as reply:
                return reply.status, reply.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def send(self, sender: str, text: str) -> List[dict]:
        status, body = self.post_raw(json.dumps({"sender": sender, "message": text}).encode())
        assert status == 200, body
        return json.loads(body)

    def say(self, sender: str, text: str) -> str:
        """The assistant's reply texts to one message, joined."""
        return "\n".join(m.get("text", "") for m in self.send(sender, text))


@pytest.fixture(scope="session")
def running_assistant(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestClient]:
    """The real Rasa server and action server on free ports, with their own tracker store."""
    work = tmp_path_factory.mktemp("assistant")
    rasa_port, actions_port = free_port(), free_port()
    env = {"TRACKER_URL": f"sqlite:///{work / 'tracker.db'}"}
    with assistant(trained_model, rasa_port, actions_port, extra_env=env, log_dir=work):
        yield RestClient(f"http://127.0.0.1:{rasa_port}", work / "tracker.db")
