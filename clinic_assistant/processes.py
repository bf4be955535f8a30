"""Start, watch and stop the assistant's processes (Rasa server, action server, web app, staff console, delivery
worker).

Used by the run command, the end-to-end tests and the benchmarks, so all of
them exercise the same way of starting the assistant.
"""

import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Sequence

from clinic_assistant import settings


def process_environment(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Rasa 3.6's dependencies print pages of deprecation notices at every start.
    env.setdefault("PYTHONWARNINGS", "ignore::DeprecationWarning,ignore::PendingDeprecationWarning")
    env.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
    env["RASA_TELEMETRY_ENABLED"] = "false"  # nothing about patients' chats leaves the machine
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(settings.PROJECT_DIR), env.get("PYTHONPATH")]))
    env.update(settings.rasa_environment())
    env.update(extra or {})
    if extra and "LOCK_STORE_URL" in extra:  # the fields endpoints.yml reads follow the URL given
        env.update(settings.lock_store_environment(extra["LOCK_STORE_URL"]))
    return env


def free_port() -> int:
    """A TCP port on loopback that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# prctl's option that has the kernel signal a process when its parent dies (linux/prctl.h).
PR_SET_PDEATHSIG = 1

# Logging of the Rasa server and the action server (clinic_assistant/logs.py's handler); each spells its option
# differently, rasa_sdk with an underscore.
LOGGING_CONFIG = "logging.yml"


def actions_command(port: int) -> List[str]:
    return [
        sys.executable, "-m", "rasa_sdk", "--actions", "actions", "--port", str(port),
        "--logging-config_file", LOGGING_CONFIG,
    ]


def delivery_command() -> List[str]:
    return [sys.executable, "-m", "clinic_assistant", "deliver"]


def web_command() -> List[str]:
    return [sys.executable, "-m", "clinic_assistant", "web"]


def console_command() -> List[str]:
    return [sys.executable, "-m", "clinic_assistant", "console"]


def rasa_command(model: Path, port: int) -> List[str]:
    return [
        sys.executable, "-m", "clinic_assistant.rasa_server", "run",  # Rasa's own, NLU parses cached
        "--model", str(model),
        "--interface", settings.RASA_HOST,
        "--port", str(port),
        "--credentials", "credentials.yml",
        "--endpoints", "endpoints.yml",
        "--logging-config-file", LOGGING_CONFIG,
    ]


def rasa_readiness_url(port: int) -> str:
    """Answers 200 once the server has loaded its model and its stores answer (channels/readiness.py)."""
    return f"http://{settings.RASA_HOST}:{port}/webhooks/readiness/"


@dataclass(frozen=True)
class ServiceSpec:
    """What to run for one of the assistant's processes; ``assistant()`` and the run command's supervisor both
    start from these, so both run the same commands."""

    key: str  # "rasa", "actions", "web", "console", "delivery": its log file's and the status file's name
    name: str  # for people: "Rasa server 1"
    command: List[str]
    health_url: Optional[str]  # None: a process serving nothing, healthy while it runs
    env: Dict[str, str]


def service_specs(
    model: Path,
    rasa_port: int = settings.RASA_PORT,
    actions_port: int = settings.ACTIONS_PORT,
    web_port: Optional[int] = None,
    console_port: Optional[int] = None,
    more_rasa_ports: Sequence[int] = (),
    extra_env: Optional[Dict[str, str]] = None,
    with_rasa: bool = True,
) -> List[ServiceSpec]:
    """The action server, the Rasa server (and one more per ``more_rasa_ports``, sharing its stores), the web app
    and the staff console (each unless its port is None) and, when a clinic webhook is set, the delivery worker."""
    env = process_environment(
        {
            "ACTION_ENDPOINT_URL": f"http://{settings.ACTIONS_HOST}:{actions_port}/webhook",
            "SANIC_HOST": settings.ACTIONS_HOST,
            **(extra_env or {}),
        }
    )
    specs = [ServiceSpec(
        "actions", "action server", actions_command(actions_port),
        f"http://{settings.ACTIONS_HOST}:{actions_port}/health", env,
    )]
    if with_rasa:
        for n, port in enumerate([rasa_port, *more_rasa_ports], start=1):
            key = "rasa" if n == 1 else f"rasa-{n}"
            specs.append(ServiceSpec(key, f"Rasa server {n}", rasa_command(model, port), rasa_readiness_url(port), env))
    if web_port is not None:
        specs.append(ServiceSpec(
            "web", "web app", web_command(), f"http://{settings.WEB_HOST}:{web_port}/healthz",
            {**env, "WEB_PORT": str(web_port)},
        ))
    if console_port is not None:
        specs.append(ServiceSpec(
            "console", "staff console", console_command(), f"http://{settings.CONSOLE_HOST}:{console_port}/healthz",
            {**env, "CONSOLE_PORT": str(console_port)},
        ))
    # Tests point the processes at their own webhook through extra_env, like every other setting.
    webhook_url = (extra_env or {}).get("CLINIC_WEBHOOK_URL", settings.CLINIC_WEBHOOK_URL)
    if webhook_url:
        specs.append(ServiceSpec(
            "delivery", "delivery worker", delivery_command(), None, {**env, "CLINIC_WEBHOOK_URL": webhook_url},
        ))
    return specs


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    health_url: Optional[str]  # None: a process serving nothing, healthy while it runs
    log: Optional[Path] = None
    env: Dict[str, str] = field(default_factory=dict)  # what it was started with, to start it again
    own_group: bool = False  # leads a process group of its own: signals go to the whole group

    def log_tail(self, lines: int = 15) -> str:
        if not self.log or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def signal(self, signum: int) -> None:
        """Send ``signum`` to the process (and, leading a group, to what it started, e.g. ``rasa train``)."""
        try:
            if self.own_group:
                os.killpg(self.process.pid, signum)
            elif self.process.poll() is None:
                self.process.send_signal(signum)
        except ProcessLookupError:
            pass  # gone already

    def stop(self, timeout: float = 20) -> None:
        stop_all([self], timeout)


def _die_with_parent(parent: int) -> Callable[[], None]:
    """Run in the child before its program: SIGTERM to it when ``parent`` dies, even killed with SIGKILL (Linux's
    PR_SET_PDEATHSIG), since a process in a session of its own would otherwise outlive it and hold its port."""
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before the fork: nothing to load in the child

    def set_signal() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # it died before the line above
            os.kill(os.getpid(), signal.SIGTERM)

    return set_signal


def start(
    name: str,
    command: List[str],
    health_url: Optional[str],
    env: Dict[str, str],
    log: Optional[Path] = None,
    own_group: bool = False,
) -> Service:
    """Start ``command`` in the project directory; its output goes to ``log``, else to ours.

    ``own_group`` starts it in a session of its own: a Ctrl-C in the terminal then reaches only the one who started
    it (the supervisor, which stops every process in order), and a kill reaches the whole group. Such a process is
    also stopped when the one who started it dies (on Linux).
    """
    output = open(log, "ab") if log else None
    process = subprocess.Popen(
        command, cwd=settings.PROJECT_DIR, env=env, stdout=output, stderr=subprocess.STDOUT if output else None,
        start_new_session=own_group,
        preexec_fn=_die_with_parent(os.getpid()) if own_group and sys.platform == "linux" else None,
    )
    if output:
        output.close()  # the child has its own copy
    return Service(name, process, health_url, log, env, own_group)


def stop_all(services: Iterable[Service], grace: float, hurry: Callable[[], bool] = lambda: False) -> None:
    """SIGTERM to every service at once, then SIGKILL to those still running after ``grace`` seconds (or as soon as
    ``hurry()`` is true, e.g. after a second Ctrl-C). Waiting for all of them together bounds the stop by ``grace``,
    not by the number of processes."""
    services = list(services)
    for service in services:
        service.signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    while any(s.process.poll() is None for s in services) and time.monotonic() < deadline and not hurry():
        time.sleep(0.05)  # Popen.wait takes one process at a time; polling takes them all
    for service in services:
        if service.own_group or service.process.poll() is None:
            service.signal(signal.SIGKILL)  # a group's leftovers too, e.g. a server's own children
    for service in services:
        service.process.wait()


def wait_until_healthy(service: Service, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(
                f"{service.name} exited with code {service.process.returncode}\n{service.log_tail()}"
            )
        if service.health_url is None or answers(service.health_url):
            return
        time.sleep(0.5)
    raise TimeoutError(f"{service.name} not healthy after {timeout:.0f}s at {service.health_url}")


def answers(url: str, timeout: float = 2) -> bool:
    """Whether ``url`` answers 200 within ``timeout`` seconds."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return reply.status == 200
    except OSError:  # refused, timed out, or an HTTP error status
        return False


@contextmanager
def assistant(
    model: Path,
    rasa_port: int = settings.RASA_PORT,
    actions_port: int = settings.ACTIONS_PORT,
    web_port: Optional[int] = None,
    console_port: Optional[int] = None,
    more_rasa_ports: Sequence[int] = (),
    extra_env: Optional[Dict[str, str]] = None,
    log_dir: Optional[Path] = None,
    with_rasa: bool = True,
    stop_grace: float = 20,
) -> Iterator[Dict[str, Service]]:
    """Run the processes of ``service_specs`` until the block ends, without restarting any (tests restart them
    on purpose); then stop them all at once, killing those still running after ``stop_grace`` seconds."""
    specs = service_specs(
        model, rasa_port, actions_port, web_port, console_port, more_rasa_ports, extra_env, with_rasa
    )
    services: Dict[str, Service] = {}
    try:
        for spec in specs:
            log = log_dir / f"{spec.key}.log" if log_dir else None
            services[spec.key] = start(spec.name, spec.command, spec.health_url, spec.env, log)
        for service in services.values():
            wait_until_healthy(service)
        yield services
    finally:
        stop_all(services.values(), stop_grace)
