"""The run command's supervisor: how long each process takes from SIGKILL to answering its health or readiness URL
again (the delivery worker, which serves nothing: to running again), the supervisor's own RSS once everything is
ready, and how long a SIGTERM takes to stop everything.

The real run command on free ports with its own var/ (``var/bench/restarts``), the delivery worker included
(pointed at a closed port: its outbox is empty). It uses the project's model, trained first if stale, as ``make
run`` does. Alone: ``PYTHONPATH=. .venv/bin/python -m bench.restarts``.
"""

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict

from clinic_assistant import settings
from clinic_assistant.processes import answers, free_port, process_environment

WORK = settings.VAR_DIR / "bench" / "restarts"
KILL_ORDER = ("rasa", "actions", "web", "console", "delivery")
START_TIMEOUT = 600  # seconds; training, if the model is stale, included
RESTART_TIMEOUT = 120


def restart_figures() -> dict:
    """Start the run command, read the supervisor's RSS, kill each process in turn, then stop it."""
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    started = time.perf_counter()
    with open(WORK / "run.log", "wb") as log:
        command = [sys.executable, "-m", "clinic_assistant", "run"]
        process = subprocess.Popen(command, cwd=settings.PROJECT_DIR, env=_environment(), stdout=log,
                                   stderr=subprocess.STDOUT)
    try:
        _wait(_all_ready, START_TIMEOUT, "every process ready")
        figures = {"start_seconds": time.perf_counter() - started, "supervisor_rss_mb": own_rss_mb(process.pid)}
        figures["restart_seconds"] = {key: restart_seconds(key) for key in KILL_ORDER}
        figures["supervisor_rss_mb_after_restarts"] = own_rss_mb(process.pid)
        figures["stop_seconds"] = _stop_seconds(process)
        return figures
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def restart_seconds(key: str) -> float:
    """SIGKILL to ``key``'s process, then the seconds until its restart answers its health URL (or runs)."""
    entry = _status()["processes"][key]
    old_pid = entry["pid"]
    killed = time.perf_counter()
    os.kill(old_pid, signal.SIGKILL)
    new_pid = _wait(lambda: _new_pid(key, old_pid), RESTART_TIMEOUT, f"{key} started again")
    if entry["health_url"]:
        _wait(lambda: answers(entry["health_url"], timeout=1), RESTART_TIMEOUT, f"{key} answering again")
    else:
        _wait(lambda: Path(f"/proc/{new_pid}").exists(), RESTART_TIMEOUT, f"{key} running again")
    return time.perf_counter() - killed


def own_rss_mb(pid: int) -> float:
    """Resident memory of this one process, its children not included (bench.memory.rss_mb counts them)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def print_restarts(figures: dict) -> None:
    restarts = ", ".join(f"{key} {seconds:.1f} s" for key, seconds in figures["restart_seconds"].items())
    print(f"Run command: supervisor RSS {figures['supervisor_rss_mb']:.0f} MB once ready "
          f"({figures['supervisor_rss_mb_after_restarts']:.0f} MB after the restarts), ready in "
          f"{figures['start_seconds']:.0f} s, stopped by SIGTERM in {figures['stop_seconds']:.1f} s")
    print(f"  SIGKILL to answering again: {restarts}")


def _environment() -> Dict[str, str]:
    ports = {"RASA_PORT": free_port(), "ACTIONS_PORT": free_port(), "WEB_PORT": free_port(),
             "CONSOLE_PORT": free_port()}
    env = process_environment({
        **{name: str(port) for name, port in ports.items()},
        "CLINIC_VAR_DIR": str(WORK),
        "CLINIC_WEBHOOK_URL": f"http://127.0.0.1:{free_port()}/consultations",
        "CLINIC_WEBHOOK_SECRET": secrets.token_hex(16),
        "REST_API_TOKEN": secrets.token_urlsafe(16),
    })
    for derived in ("ACTION_ENDPOINT_URL", "TRACKER_URL"):
        env.pop(derived)  # from the ports and var/ above, by the run command's settings
    return env


def _status() -> dict:
    try:
        return json.loads((WORK / "supervisor.json").read_text())
    except FileNotFoundError:
        return {"processes": {}}


def _all_ready() -> bool:
    processes = _status()["processes"]
    return processes.keys() >= set(KILL_ORDER) and all(p["state"] == "ready" for p in processes.values())


def _new_pid(key: str, old_pid: int) -> int:
    pid = _status()["processes"][key]["pid"]
    return pid if pid not in (None, old_pid) else 0


def _stop_seconds(process: subprocess.Popen) -> float:
    started = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    process.wait(60)
    return time.perf_counter() - started


def _wait(condition: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s (see {WORK / 'run.log'})")
        time.sleep(0.1)


if __name__ == "__main__":
    figures = restart_figures()
    print_restarts(figures)
    print(json.dumps(figures, indent=2))
