"""The supervisor's restart policy and stop, on real short-lived child processes (``python -c`` scripts).

Waits are shortened (tenths of a second) so that a crash loop plays out in a few seconds; the rules are the ones
the run command uses with its settings.
"""

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, List

import pytest

from clinic_assistant.processes import ServiceSpec
from clinic_assistant.settings import PROJECT_DIR
from clinic_assistant.supervisor import GAVE_UP, READY, RestartPolicy, StopSignals, Supervisor, run_once

CRASH = "import sys; sys.exit(3)"
SLEEP = "import time; time.sleep(600)"
# Ignores SIGTERM, then says so in the file named by its first argument.
IGNORE_SIGTERM = (
    "import signal, sys, time, pathlib; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "pathlib.Path(sys.argv[1]).touch(); time.sleep(600)"
)
# Starts a grandchild that sleeps, writes its pid to the file named by its first argument, then sleeps too.
SPAWN_GRANDCHILD = (
    "import subprocess, sys, time, pathlib; g = subprocess.Popen([sys.executable, '-c', 'import time; "
    "time.sleep(600)']); pathlib.Path(sys.argv[1]).write_text(str(g.pid)); time.sleep(600)"
)
POLICY = RestartPolicy(backoff_initial=0.2, backoff_max=0.8, healthy_seconds=30, crash_limit=10, crash_window=60)


def python(key: str, code: str, *args: str) -> ServiceSpec:
    return ServiceSpec(key, f"test process {key}", [sys.executable, "-c", code, *args], None, dict(os.environ))


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def wait_for_file(path: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} not written within {timeout}s"
        time.sleep(0.02)


class Driven:
    """A supervisor driven by the test: ``until`` polls it the way ``serve`` does, recording every start."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self.starts = {key: [] for key in supervisor.children}  # key -> start times (time.monotonic())

    def until(self, condition: Callable[[], bool], timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while True:
            self.supervisor.poll()
            for key, child in self.supervisor.children.items():
                if child.starts and (not self.starts[key] or self.starts[key][-1] != child.started):
                    self.starts[key].append(child.started)
            if condition():
                return
            assert time.monotonic() < deadline, f"not met within {timeout}s: {self.supervisor.status()}"
            time.sleep(min(0.02, self.supervisor.next_wakeup()))

    def child(self, key: str):  # noqa: ANN201
        return self.supervisor.children[key]


@pytest.fixture
def supervise(tmp_path: Path) -> Iterator[Callable[..., Driven]]:
    made: List[Supervisor] = []

    def make(*specs: ServiceSpec, policy: RestartPolicy = POLICY, grace: float = 2) -> Driven:
        supervisor = Supervisor(specs, policy, tmp_path / "supervisor.json", stop_grace=grace)
        made.append(supervisor)
        return Driven(supervisor)

    yield make
    for supervisor in made:
        supervisor.stop()


def test_the_wait_before_a_restart_doubles_with_each_crash_up_to_its_maximum(supervise):
    driven = supervise(python("crasher", CRASH))
    crashes = driven.child("crasher").crashes
    driven.until(lambda: len(crashes) >= 5)
    assert [c.wait for c in crashes[:5]] == [0.2, 0.4, 0.8, 0.8, 0.8]
    assert {c.exit_code for c in crashes} == {3}
    starts = driven.starts["crasher"]
    for crash, next_start in zip(crashes[:4], starts[1:5], strict=True):
        waited = next_start - crash.at
        assert crash.wait <= waited < crash.wait + 1.0  # really waited, and no longer than needed


def test_the_wait_starts_over_after_a_run_long_enough_to_count_as_healthy(supervise):
    runs_then_crashes = "import sys, time; time.sleep(0.4); sys.exit(1)"
    policy = RestartPolicy(backoff_initial=0.1, backoff_max=5, healthy_seconds=0.3, crash_limit=10, crash_window=60)
    driven = supervise(python("flaky", runs_then_crashes), policy=policy)
    crashes = driven.child("flaky").crashes
    driven.until(lambda: len(crashes) >= 4)
    assert [c.wait for c in crashes[:4]] == [0.1] * 4


def test_each_crash_and_restart_is_logged_with_the_exit_code(supervise, caplog):
    caplog.set_level(logging.INFO, logger="clinic_assistant.supervisor")
    driven = supervise(python("crasher", CRASH), python("sleeper", SLEEP))
    driven.until(lambda: driven.child("crasher").starts >= 2 and driven.child("sleeper").state == READY)
    sleeper_pid = driven.child("sleeper").service.process.pid
    os.kill(sleeper_pid, signal.SIGKILL)
    driven.until(lambda: driven.child("sleeper").starts == 2)
    text = caplog.text
    assert "crasher (pid" in text and "exited with code 3 after" in text and "restarting it in 0.2 s" in text
    assert f"sleeper (pid {sleeper_pid}) was killed by SIGKILL (exit code -9)" in text
    assert "Restarted crasher as pid" in text and "(restart 1)" in text


def test_a_crash_loop_gives_up_on_that_process_while_the_others_keep_running(supervise, caplog, tmp_path):
    policy = RestartPolicy(backoff_initial=0.05, backoff_max=0.1, healthy_seconds=30, crash_limit=3, crash_window=60)
    driven = supervise(python("crasher", CRASH), python("sleeper", SLEEP), policy=policy)
    driven.until(lambda: driven.child("sleeper").state == READY)
    sleeper_pid = driven.child("sleeper").service.process.pid
    driven.until(lambda: driven.child("crasher").state == GAVE_UP)
    crasher = driven.child("crasher")
    assert len(crasher.crashes) == 4 and crasher.crashes[-1].wait is None  # the 4th crash in the window: given up
    assert "crasher (pid" in caplog.text and "4 crashes within 60 s, giving up on it" in caplog.text
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline:  # it stays given up
        driven.supervisor.poll()
        time.sleep(0.05)
    assert crasher.starts == 4
    sleeper = driven.child("sleeper")
    assert sleeper.state == READY and sleeper.service.process.pid == sleeper_pid and alive(sleeper_pid)
    assert driven.supervisor.active and driven.supervisor.exit_status() == 1
    status = json.loads((tmp_path / "supervisor.json").read_text())["processes"]
    assert status["crasher"]["state"] == "gave up" and status["crasher"]["pid"] is None
    assert status["sleeper"]["pid"] == sleeper_pid


def test_crashes_older_than_the_window_do_not_count_towards_giving_up(supervise):
    runs_then_crashes = "import sys, time; time.sleep(0.4); sys.exit(1)"
    policy = RestartPolicy(backoff_initial=0.05, backoff_max=0.05, healthy_seconds=30, crash_limit=1,
                           crash_window=0.3)
    driven = supervise(python("slow-crasher", runs_then_crashes), policy=policy)
    crashes = driven.child("slow-crasher").crashes
    driven.until(lambda: len(crashes) >= 3)
    assert driven.child("slow-crasher").state != GAVE_UP and all(c.wait == 0.05 for c in crashes)


def test_the_status_file_names_each_process_with_its_pid_and_restarts(supervise, tmp_path):
    driven = supervise(python("sleeper", SLEEP))
    driven.until(lambda: driven.child("sleeper").state == READY)
    path = tmp_path / "supervisor.json"
    first = json.loads(path.read_text())
    entry = first["processes"]["sleeper"]
    assert first["supervisor_pid"] == os.getpid() and first["state"] == "serving"
    assert entry == {"name": "test process sleeper", "pid": driven.child("sleeper").service.process.pid,
                     "state": "ready", "restarts": 0, "last_exit_code": None, "health_url": None}
    os.kill(entry["pid"], signal.SIGKILL)
    driven.until(lambda: driven.child("sleeper").starts == 2)
    again = json.loads(path.read_text())["processes"]["sleeper"]
    assert again["restarts"] == 1 and again["last_exit_code"] == -9 and again["pid"] not in (None, entry["pid"])
    driven.supervisor.stop()
    stopped = json.loads(path.read_text())
    assert stopped["state"] == "stopped" and stopped["processes"]["sleeper"]["pid"] is None


def test_stop_signals_every_process_at_once_and_kills_those_still_running_after_the_grace(supervise, tmp_path):
    specs = [python("sleeper", SLEEP)] + [
        python(f"stubborn-{n}", IGNORE_SIGTERM, str(tmp_path / f"stubborn-{n}")) for n in (1, 2)
    ]
    driven = supervise(*specs, grace=1.0)
    driven.until(lambda: all(child.state == READY for child in driven.supervisor.children.values()))
    for n in (1, 2):
        wait_for_file(tmp_path / f"stubborn-{n}")  # SIGTERM is ignored from now on
    processes = {key: child.service.process for key, child in driven.supervisor.children.items()}
    started = time.monotonic()
    driven.supervisor.stop()
    elapsed = time.monotonic() - started
    # One grace period for all of them: one after the other, the two stubborn ones would take two.
    assert 1.0 <= elapsed < 1.9
    assert processes["sleeper"].returncode == -signal.SIGTERM
    assert processes["stubborn-1"].returncode == processes["stubborn-2"].returncode == -signal.SIGKILL


SERVE = """
import json, sys
from clinic_assistant import logs
from clinic_assistant.processes import ServiceSpec
from clinic_assistant.supervisor import RestartPolicy, StopSignals, Supervisor
status, grace, limit, *codes = sys.argv[1:]
logs.configure("supervisor")
specs = [ServiceSpec(f"p{n}", f"p{n}", [sys.executable, "-c", code], None, {}) for n, code in enumerate(codes)]
policy = RestartPolicy(0.05, 0.1, 30, int(limit), 60)
with StopSignals() as signals:
    sys.exit(Supervisor(specs, policy, __import__("pathlib").Path(status), stop_grace=float(grace)).serve(signals))
"""


def serve(tmp_path: Path, *codes: str, grace: float = 2, limit: int = 5) -> subprocess.Popen:
    """A supervisor serving ``codes`` in a process of its own, as the run command serves the assistant's."""
    command = [sys.executable, "-c", SERVE, str(tmp_path / "status.json"), str(grace), str(limit), *codes]
    return subprocess.Popen(command, cwd=PROJECT_DIR, env={**os.environ, "PYTHONPATH": str(PROJECT_DIR)})


def served_status(tmp_path: Path, condition: Callable[[dict], bool], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            status = json.loads((tmp_path / "status.json").read_text())
            if condition(status):
                return status
        except FileNotFoundError:
            pass
        assert time.monotonic() < deadline, f"status not reached within {timeout}s"
        time.sleep(0.05)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_stops_every_process_on_a_stop_signal_within_the_grace_period(tmp_path, stop_signal):
    marker = tmp_path / "ignoring"
    stubborn = IGNORE_SIGTERM.replace("sys.argv[1]", repr(str(marker)))
    supervisor = serve(tmp_path, SLEEP, stubborn, grace=2)
    try:
        status = served_status(tmp_path, lambda s: all(p["state"] == "ready" for p in s["processes"].values()))
        wait_for_file(marker)
        started = time.monotonic()
        supervisor.send_signal(stop_signal)
        assert supervisor.wait(10) == 0
        assert time.monotonic() - started < 4  # the 2 s grace, then SIGKILL
    finally:
        supervisor.kill()
        supervisor.wait()
    assert not any(alive(p["pid"]) for p in status["processes"].values())
    assert json.loads((tmp_path / "status.json").read_text())["state"] == "stopped"


def test_serve_exits_with_status_1_after_giving_up_on_a_process(tmp_path):
    supervisor = serve(tmp_path, SLEEP, CRASH, limit=1)
    try:
        served_status(tmp_path, lambda s: s["processes"]["p1"]["state"] == "gave up")
        assert supervisor.poll() is None  # the sleeper is still served
        supervisor.send_signal(signal.SIGTERM)
        assert supervisor.wait(10) == 1
    finally:
        supervisor.kill()
        supervisor.wait()


def test_serve_stops_by_itself_when_every_process_was_given_up_on(tmp_path):
    supervisor = serve(tmp_path, CRASH, limit=1)
    try:
        assert supervisor.wait(30) == 1
    finally:
        supervisor.kill()
        supervisor.wait()


def test_no_process_outlives_a_supervisor_killed_with_sigkill(tmp_path):
    supervisor = serve(tmp_path, SLEEP, SLEEP)
    try:
        status = served_status(tmp_path, lambda s: all(p["state"] == "ready" for p in s["processes"].values()))
    finally:
        supervisor.kill()  # no chance to stop anything itself
        supervisor.wait()
    pids = [p["pid"] for p in status["processes"].values()]
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in pids):  # each was told to stop when its parent died
        assert time.monotonic() < deadline, "a process outlived its supervisor"
        time.sleep(0.05)


def test_run_once_gives_the_exit_code():
    with StopSignals() as signals:
        assert run_once("three", [sys.executable, "-c", CRASH], signals) == 3


def test_run_once_stops_the_whole_process_group_on_a_stop_signal(tmp_path):
    pid_file = tmp_path / "grandchild"

    def stop_once_the_grandchild_runs() -> None:
        wait_for_file(pid_file)
        os.kill(os.getpid(), signal.SIGTERM)  # recorded by StopSignals, as Ctrl-C during training would be

    with StopSignals() as signals:
        threading.Thread(target=stop_once_the_grandchild_runs, daemon=True).start()
        command = [sys.executable, "-c", SPAWN_GRANDCHILD, str(pid_file)]
        started = time.monotonic()
        assert run_once("training", command, signals, grace=2) is None
        assert time.monotonic() - started < 20
    grandchild = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while alive(grandchild):  # SIGTERM reached it too, though only its parent was started here
        assert time.monotonic() < deadline, "the grandchild outlived the stop"
        time.sleep(0.05)


def test_the_supervisor_imports_none_of_the_heavy_libraries():
    """The run command's process imports what ``run`` imports; Rasa, spaCy, TensorFlow, SQLAlchemy and Alembic
    belong to its children."""
    check = (
        "import sys; import clinic_assistant.__main__, clinic_assistant.logs, clinic_assistant.training, "
        "clinic_assistant.supervisor; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'rasa', 'spacy', 'tensorflow', 'sqlalchemy', "
        "'alembic'}))"
    )
    output = subprocess.run([sys.executable, "-c", check], cwd=PROJECT_DIR, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(PROJECT_DIR)}, check=True).stdout
    assert output.strip() == "[]"
