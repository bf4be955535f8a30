"""The run command serves REST, actions, the demo page and the staff console from a small supervisor, and stops
them all within 10 s on Ctrl-C or SIGTERM."""

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from clinic_assistant.processes import Service, free_port, process_environment, wait_until_healthy
from clinic_assistant.settings import PROJECT_DIR

STOP_SECONDS = 10
SUPERVISOR_MAX_RSS_MB = 100


def _listening(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def rss_mb(pid: int) -> float:
    """Resident memory of this one process (not its children), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


def run_command_env(var_dir: Path, ports: dict, token: str) -> dict:
    """The run command's environment: its own var/ and free ports, settings derived as a local run derives them."""
    env = process_environment(
        {
            "RASA_PORT": str(ports["rasa"]),
            "ACTIONS_PORT": str(ports["actions"]),
            "WEB_PORT": str(ports["web"]),
            "CONSOLE_PORT": str(ports["console"]),
            "CLINIC_VAR_DIR": str(var_dir),
            "REST_API_TOKEN": token,
        }
    )
    for derived in ("ACTION_ENDPOINT_URL", "TRACKER_URL", "CLINIC_WEBHOOK_URL", "CLINIC_WEBHOOK_SECRET"):
        env.pop(derived, None)  # from the ports and var/ above, by the run command's settings
    return env


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_run_serves_and_stops_every_server(trained_model: Path, tmp_path: Path, stop_signal):
    ports = {name: free_port() for name in ("rasa", "actions", "web", "console")}
    token = secrets.token_urlsafe(16)
    env = run_command_env(tmp_path, ports, token)
    process = subprocess.Popen([sys.executable, "-m", "clinic_assistant", "run"], cwd=PROJECT_DIR, env=env)
    rasa_port, web_port, console_port = ports["rasa"], ports["web"], ports["console"]
    try:
        wait_until_healthy(Service("run command", process, f"http://127.0.0.1:{rasa_port}/webhooks/rest/"))
        request = urllib.request.Request(
            f"http://127.0.0.1:{rasa_port}/webhooks/rest/webhook",
            data=json.dumps({"sender": "run-check", "message": "what is causalgia"}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
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
        status = json.loads((tmp_path / "supervisor.json").read_text())
        assert status["supervisor_pid"] == process.pid and set(status["processes"]) == set(ports)
        children = [entry["pid"] for entry in status["processes"].values()]
        assert all(_alive(pid) for pid in children)
        # The supervisor imports neither Rasa nor TensorFlow nor SQLAlchemy: its children do.
        supervisor_mb = rss_mb(process.pid)
        print(f"supervisor RSS while serving: {supervisor_mb:.1f} MB")
        assert supervisor_mb < SUPERVISOR_MAX_RSS_MB
        started = time.monotonic()
        os.kill(process.pid, stop_signal)
        assert process.wait(timeout=STOP_SECONDS + 5) == 0
        stop_seconds = time.monotonic() - started
        print(f"stopped in {stop_seconds:.1f} s")
        assert stop_seconds < STOP_SECONDS
    finally:
        if process.poll() is None:
            process.kill()
    assert not any(_listening(port) for port in ports.values())
    assert not any(_alive(pid) for pid in children)
    assert json.loads((tmp_path / "supervisor.json").read_text())["state"] == "stopped"
