"""The run command serves REST, actions, the demo page and the staff console, and stops them all cleanly."""

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from clinic_assistant.processes import Service, free_port, process_environment, wait_until_healthy
from clinic_assistant.settings import PROJECT_DIR


def _listening(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_run_serves_and_stops_every_server(trained_model: Path, tmp_path: Path, stop_signal):
    rasa_port, actions_port, web_port, console_port = free_port(), free_port(), free_port(), free_port()
    env = process_environment(
        {
            "RASA_PORT": str(rasa_port),
            "ACTIONS_PORT": str(actions_port),
            "WEB_PORT": str(web_port),
            "CONSOLE_PORT": str(console_port),
            "CLINIC_VAR_DIR": str(tmp_path),
        }
    )
    env.pop("ACTION_ENDPOINT_URL")  # derived from ACTIONS_PORT by the run command's settings
    env.pop("TRACKER_URL")
    process = subprocess.Popen([sys.executable, "-m", "clinic_assistant", "run"], cwd=PROJECT_DIR, env=env)
    try:
        wait_until_healthy(Service("run command", process, f"http://127.0.0.1:{rasa_port}/webhooks/rest/"))
        request = urllib.request.Request(
            f"http://127.0.0.1:{rasa_port}/webhooks/rest/webhook",
            data=json.dumps({"sender": "run-check", "message": "what is causalgia"}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as reply:
            assert "nerve damage" in reply.read().decode()
        assert (tmp_path / "tracker.db").exists()
        with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/", timeout=10) as page:
            html = page.read().decode()
        # The page embeds the widget pointed at this Rasa server.
        assert f'data-server="http://127.0.0.1:{rasa_port}"' in html and "/widget/clinic-widget.js" in html
        with urllib.request.urlopen(f"http://127.0.0.1:{console_port}/healthz", timeout=10) as health:
            assert health.status == 200  # the staff console (its pages need a login)
        os.kill(process.pid, stop_signal)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert not any(_listening(port) for port in (rasa_port, actions_port, web_port, console_port))
