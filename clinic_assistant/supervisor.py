"""The run command's supervisor: keeps the assistant's processes running, and stops them all together.

A process that exits is started again after a wait that doubles with each crash in a row (``RestartPolicy``); one
that crashes too often is given up on while the others keep serving. SIGINT or SIGTERM stop every process at
once (``processes.stop_all``). Every start, crash and restart is logged with its exit code, and each change is
written to a status file (``settings.SUPERVISOR_STATUS_PATH``) where tools and tests find the processes' pids.

This module imports neither Rasa, spaCy, TensorFlow, SQLAlchemy nor Alembic, and neither may what it imports: the
supervisor stays small because training and migrations run as child processes (``run_once``).
"""

import json
import logging
import os
import select
import signal
import socket
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Dict, List, Optional, Sequence

from clinic_assistant import settings
from clinic_assistant.processes import Service, ServiceSpec, answers, process_environment, start, stop_all

logger = logging.getLogger(__name__)

# Longest sleep of the loop: a signal or a child's exit wakes it sooner.
TICK = 0.5
# A starting process's health URL must answer within this. A busy Rasa server answers slowly, so the checks run in
# threads of their own: the loop never waits for one, and a stop signal is never kept waiting.
HEALTH_TIMEOUT = 3

WAITING, STARTING, READY, GAVE_UP, STOPPED = "waiting", "starting", "ready", "gave up", "stopped"


@dataclass(frozen=True)
class RestartPolicy:
    backoff_initial: float  # seconds before the first restart
    backoff_max: float  # the wait doubles with each crash in a row, up to this
    healthy_seconds: float  # a process that ran this long before crashing starts again from the initial wait
    crash_limit: int  # more crashes than this within crash_window seconds: given up on
    crash_window: float

    @classmethod
    def from_settings(cls) -> "RestartPolicy":
        return cls(
            settings.SUPERVISOR_BACKOFF_INITIAL, settings.SUPERVISOR_BACKOFF_MAX, settings.SUPERVISOR_HEALTHY_SECONDS,
            settings.SUPERVISOR_CRASH_LIMIT, settings.SUPERVISOR_CRASH_WINDOW,
        )

    def delay(self, crashes_in_a_row: int) -> float:
        """Seconds to wait before restarting a process after its ``crashes_in_a_row``-th crash in a row."""
        return min(self.backoff_initial * 2 ** (crashes_in_a_row - 1), self.backoff_max)


@dataclass(frozen=True)
class Crash:
    exit_code: int  # negative: killed by that signal
    at: float  # time.monotonic()
    ran: float  # seconds it had run
    wait: Optional[float]  # seconds until its restart; None: given up on


def describe_exit(code: int) -> str:
    """``exited with code 3``, or ``was killed by SIGKILL (exit code -9)``."""
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name} (exit code {code})"
        except ValueError:
            pass
    return f"exited with code {code}"


class StopSignals:
    """SIGINT and SIGTERM, recorded instead of raising, so a stop never lands in the middle of starting a process.

    A wake-up socket (``signal.set_wakeup_fd``) cuts ``wait`` short when one arrives, and when a child exits
    (SIGCHLD), so the loop reacts at once without sleeping through a signal. Use from the main thread.
    """

    STOP = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.received: List[int] = []
        self._reader, self._writer = socket.socketpair()
        self._previous: Dict[int, object] = {}
        self._previous_fd = -1

    def __enter__(self) -> "StopSignals":
        for end in (self._reader, self._writer):
            end.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno(), warn_on_full_buffer=False)
        for signum in (*self.STOP, signal.SIGCHLD):
            self._previous[signum] = signal.signal(signum, self._record)
        return self

    def __exit__(self, *_: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        signal.set_wakeup_fd(self._previous_fd)
        self._reader.close()
        self._writer.close()

    def _record(self, signum: int, frame: Optional[FrameType]) -> None:
        if signum in self.STOP:
            self.received.append(signum)

    @property
    def stop_requested(self) -> bool:
        return bool(self.received)

    @property
    def hurried(self) -> bool:
        """A second stop signal: whoever is still running is killed without waiting out the grace period."""
        return len(self.received) > 1

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``, less if a signal arrives (one that arrived before the call included)."""
        if not self.stop_requested:
            select.select([self._reader], [], [], max(0.0, seconds))
        try:
            while self._reader.recv(512):
                pass
        except BlockingIOError:
            pass


class Child:
    """One supervised process: its current run and its crash history."""

    def __init__(self, spec: ServiceSpec, policy: RestartPolicy, log_dir: Optional[Path] = None) -> None:
        self.spec = spec
        self.policy = policy
        self.log = log_dir / f"{spec.key}.log" if log_dir else None
        self.service: Optional[Service] = None
        self.state = WAITING
        self.starts = 0
        self.crashes: List[Crash] = []
        self.in_a_row = 0  # crashes since it last ran healthy_seconds
        self.due = 0.0  # when it is to start (time.monotonic())
        self.started = 0.0
        self.last_health_check = 0.0
        self.health_check: Optional[Future] = None  # of this run of the process

    @property
    def running(self) -> bool:
        return self.state in (STARTING, READY)

    def start(self, now: float) -> None:
        spec = self.spec
        self.service = start(spec.name, spec.command, spec.health_url, spec.env, self.log, own_group=True)
        self.starts += 1
        self.started = now
        self.state = STARTING if spec.health_url else READY

    def reap(self, now: float) -> Optional[Crash]:
        """The crash if the process has exited since the last look: its restart scheduled, or given up on."""
        if not self.running or self.service.process.poll() is None:
            return None
        self.service.signal(signal.SIGKILL)  # anything it started dies with it, or it could hold the port
        self.health_check = None  # its answer, if any, is about the run that ended
        ran = now - self.started
        self.in_a_row = 1 if ran >= self.policy.healthy_seconds else self.in_a_row + 1
        recent = [c for c in self.crashes if now - c.at <= self.policy.crash_window]
        if len(recent) + 1 > self.policy.crash_limit:
            self.state, wait = GAVE_UP, None
        else:
            self.state, wait = WAITING, self.policy.delay(self.in_a_row)
            self.due = now + wait
        crash = Crash(self.service.process.returncode, now, ran, wait)
        self.crashes.append(crash)
        return crash

    def check_ready(self, now: float, checks: ThreadPoolExecutor) -> bool:
        """Whether a starting process has just answered its health URL; asks again every TICK until it does."""
        if self.state != STARTING:
            return False
        if self.health_check is None:
            if now - self.last_health_check >= TICK:
                self.last_health_check = now
                self.health_check = checks.submit(answers, self.spec.health_url, HEALTH_TIMEOUT)
            return False
        if not self.health_check.done():
            return False
        answered, self.health_check = self.health_check.result(), None
        if answered:
            self.state = READY
        return answered

    def status(self) -> dict:
        return {
            "name": self.spec.name,
            "pid": self.service.process.pid if self.service and self.running else None,
            "state": self.state,
            "restarts": max(0, self.starts - 1),
            "last_exit_code": self.crashes[-1].exit_code if self.crashes else None,
            "health_url": self.spec.health_url,
        }


class Supervisor:
    """Starts ``specs``, restarts those that exit, and stops them all on ``stop`` or on a signal in ``serve``."""

    def __init__(
        self,
        specs: Sequence[ServiceSpec],
        policy: Optional[RestartPolicy] = None,
        status_path: Optional[Path] = None,
        log_dir: Optional[Path] = None,
        stop_grace: Optional[float] = None,
    ) -> None:
        policy = policy or RestartPolicy.from_settings()
        self.children = {spec.key: Child(spec, policy, log_dir) for spec in specs}
        self.status_path = status_path or settings.SUPERVISOR_STATUS_PATH
        self.stop_grace = settings.SUPERVISOR_STOP_GRACE if stop_grace is None else stop_grace
        self.checks = ThreadPoolExecutor(max_workers=len(self.children) or 1, thread_name_prefix="health-check")
        self.state = "serving"

    @property
    def active(self) -> bool:
        """Whether any process is still supervised (not every one given up on)."""
        return any(child.state != GAVE_UP for child in self.children.values())

    @property
    def all_ready(self) -> bool:
        return all(child.state in (READY, GAVE_UP) for child in self.children.values())

    def gave_up(self) -> List[str]:
        return [key for key, child in self.children.items() if child.state == GAVE_UP]

    def exit_status(self) -> int:
        """1 if any process was given up on (the assistant was not whole), else 0."""
        return 1 if self.gave_up() else 0

    def poll(self) -> None:
        """One look at every process: reap those that exited, start those due, notice those now answering."""
        now = time.monotonic()
        changed = False
        for key, child in self.children.items():
            crash = child.reap(now)
            if crash:
                self._log_crash(key, child, crash)
            due = child.state == WAITING and now >= child.due
            if due:
                child.start(now)
                self._log_start(key, child)
            ready = child.check_ready(now, self.checks)
            if ready:
                logger.info("%s is ready (pid %d, %.1f s after its start)", key, child.service.process.pid,
                            now - child.started)
            changed = changed or bool(crash) or due or ready
        if changed:
            self.write_status()

    def next_wakeup(self) -> float:
        """Seconds until the loop must look again: the next restart due, at most TICK."""
        now = time.monotonic()
        dues = [child.due - now for child in self.children.values() if child.state == WAITING]
        return max(0.0, min([TICK, *dues]))

    def stop(self, hurry: Optional[StopSignals] = None) -> None:
        """Stop every running process at once: SIGTERM, then SIGKILL after the grace period (or a second signal)."""
        self.state = "stopping"
        self.write_status()
        self.checks.shutdown(wait=False, cancel_futures=True)
        running = [child for child in self.children.values() if child.running]
        stop_all([child.service for child in running], self.stop_grace, lambda: bool(hurry and hurry.hurried))
        for child in self.children.values():
            if child.state != GAVE_UP:
                child.state = STOPPED
        self.state = "stopped"
        self.write_status()

    def serve(self, signals: StopSignals, ready_message: str = "Every process is ready") -> int:
        """Supervise until SIGINT or SIGTERM (or until every process was given up on); the exit status."""
        announced = False
        while not signals.stop_requested and self.active:
            self.poll()
            if not announced and self.all_ready:
                logger.info(ready_message)
                announced = True
            signals.wait(self.next_wakeup())
        if signals.stop_requested:
            logger.info("%s received: stopping every process", signal.Signals(signals.received[0]).name)
        else:
            logger.error("Every process was given up on: stopping")
        started = time.monotonic()
        self.stop(signals)
        logger.info("Stopped in %.1f s", time.monotonic() - started)
        if self.gave_up():
            logger.error("Exiting with status 1: given up on %s", ", ".join(self.gave_up()))
        return self.exit_status()

    def status(self) -> dict:
        return {
            "supervisor_pid": os.getpid(),
            "state": self.state,
            "updated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "processes": {key: child.status() for key, child in self.children.items()},
        }

    def write_status(self) -> None:
        """Replace the status file in one step, so a reader never sees half of it."""
        self.status_path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.status_path.with_name(self.status_path.name + ".partial")
        partial.write_text(json.dumps(self.status(), indent=2) + "\n")
        os.replace(partial, self.status_path)

    def _log_start(self, key: str, child: Child) -> None:
        pid = child.service.process.pid
        if child.starts == 1:
            logger.info("Started %s (%s) as pid %d", key, child.spec.name, pid)
        else:
            logger.info("Restarted %s as pid %d (restart %d)", key, pid, child.starts - 1)

    def _log_crash(self, key: str, child: Child, crash: Crash) -> None:
        pid, exit_text = child.service.process.pid, describe_exit(crash.exit_code)
        if crash.wait is None:
            logger.error(
                "%s (pid %d) %s: %d crashes within %.0f s, giving up on it; the other processes keep serving",
                key, pid, exit_text, self._recent_crashes(child, crash.at), child.policy.crash_window,
            )
        else:
            logger.warning("%s (pid %d) %s after %.1f s; restarting it in %.1f s",
                           key, pid, exit_text, crash.ran, crash.wait)

    @staticmethod
    def _recent_crashes(child: Child, now: float) -> int:
        return sum(1 for c in child.crashes if now - c.at <= child.policy.crash_window)


def run_once(name: str, command: List[str], signals: StopSignals, grace: Optional[float] = None) -> Optional[int]:
    """Run ``command`` to its end in a process group of its own (``rasa train`` under it included): its exit code,
    or None when a stop signal came first (then it was stopped)."""
    service = start(name, command, None, process_environment(), own_group=True)
    while service.process.poll() is None:
        if signals.stop_requested:
            stop_all([service], settings.SUPERVISOR_STOP_GRACE if grace is None else grace, lambda: signals.hurried)
            return None
        signals.wait(TICK)
    return service.process.returncode
