"""Start, watch and stop the assistant's processes (Rasa server, action server, delivery worker).

Used by the run command, the end-to-end tests and the benchmarks, so all of
them exercise the same way of starting the assistant.
"""

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
from typing import Dict, Iterator, List, Optional, Sequence

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


@dataclass
class Service:
    name: str
    process: subprocess.Popen
    health_url: Optional[str]  # None: a process serving nothing, healthy while it runs
    log: Optional[Path] = None
    env: Dict[str, str] = field(default_factory=dict)  # what it was started with, to start it again

    def log_tail(self, lines: int = 15) -> str:
        if not self.log or not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, timeout: float = 20) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(
    name: str, command: List[str], health_url: Optional[str], env: Dict[str, str], log: Optional[Path] = None
) -> Service:
    output = open(log, "ab") if log else None
    process = subprocess.Popen(
        command, cwd=settings.PROJECT_DIR, env=env, stdout=output, stderr=subprocess.STDOUT if output else None
    )
    return Service(name, process, health_url, log, env)


def wait_until_healthy(service: Service, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise RuntimeError(
                f"{service.name} exited with code {service.process.returncode}\n{service.log_tail()}"
            )
        if service.health_url is None:
            return
        try:
            with urllib.request.urlopen(service.health_url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"{service.name} not healthy after {timeout:.0f}s at {service.health_url}")


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
) -> Iterator[Dict[str, Service]]:
    """Run the action server, the Rasa server (and one more per ``more_rasa_ports``, sharing its stores), the
    web app and the staff console (each unless its port is None) and, when a clinic webhook is set, the delivery
    worker until the block ends."""
    env = process_environment(
        {
            "ACTION_ENDPOINT_URL": f"http://{settings.ACTIONS_HOST}:{actions_port}/webhook",
            "SANIC_HOST": settings.ACTIONS_HOST,
            **(extra_env or {}),
        }
    )
    log = (lambda name: log_dir / f"{name}.log") if log_dir else (lambda name: None)
    services: Dict[str, Service] = {}
    try:
        services["actions"] = start(
            "action server", actions_command(actions_port),
            f"http://{settings.ACTIONS_HOST}:{actions_port}/health", env, log("actions"),
        )
        if with_rasa:
            for n, port in enumerate([rasa_port, *more_rasa_ports], start=1):
                name = "rasa" if n == 1 else f"rasa-{n}"
                services[name] = start(
                    f"Rasa server {n}", rasa_command(model, port), rasa_readiness_url(port), env, log(name),
                )
        if web_port is not None:
            services["web"] = start(
                "web app", web_command(), f"http://{settings.WEB_HOST}:{web_port}/healthz",
                {**env, "WEB_PORT": str(web_port)}, log("web"),
            )
        if console_port is not None:
            services["console"] = start(
                "staff console", console_command(), f"http://{settings.CONSOLE_HOST}:{console_port}/healthz",
                {**env, "CONSOLE_PORT": str(console_port)}, log("console"),
            )
        # Tests point the processes at their own webhook through extra_env, like every other setting.
        webhook_url = (extra_env or {}).get("CLINIC_WEBHOOK_URL", settings.CLINIC_WEBHOOK_URL)
        if webhook_url:
            worker_env = {**env, "CLINIC_WEBHOOK_URL": webhook_url}
            services["delivery"] = start("delivery worker", delivery_command(), None, worker_env, log("delivery"))
        for service in services.values():
            wait_until_healthy(service)
        yield services
    finally:
        for service in reversed(list(services.values())):
            service.stop()
