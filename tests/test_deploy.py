"""The Compose file runs what the project runs: the same commands as processes.py, only variables settings.py
reads, and health checks on routes the processes serve. (No Docker engine runs here; this keeps the file from
drifting away from the code.)"""

import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from clinic_assistant import processes, settings

DEPLOY = settings.PROJECT_DIR / "deploy"
COMPOSE = yaml.safe_load((DEPLOY / "compose.yml").read_text())
SERVICES = COMPOSE["services"]
# Read by rasa_sdk itself, not by settings.py.
THIRD_PARTY_VARIABLES = {"SANIC_HOST", "SANIC_PROXIES_COUNT"}  # read by Sanic itself
EXPECTED_COMMANDS = {
    "rasa-1": processes.rasa_command(Path("models/clinic-assistant.tar.gz"), 5005),
    "rasa-2": processes.rasa_command(Path("models/clinic-assistant.tar.gz"), 5005),
    "actions": processes.actions_command(5055),
    "delivery": processes.delivery_command(),
    "web": processes.web_command(),
    "console": processes.console_command(),
}


def module_and_options(command: list) -> tuple:
    """What runs (module and subcommand) and with which options, values aside: hosts and ports differ in a
    container."""
    module = command.index("-m") + 1
    subcommand = command[module + 1:module + 2]
    return command[module], subcommand, sorted(word for word in command if word.startswith("--"))


@pytest.mark.parametrize("service", sorted(EXPECTED_COMMANDS))
def test_each_process_runs_the_command_the_project_runs(service):
    command = shlex.split(SERVICES[service]["command"])
    assert module_and_options(command) == module_and_options(EXPECTED_COMMANDS[service])


def test_every_variable_is_one_the_settings_read():
    source = (settings.PROJECT_DIR / "clinic_assistant" / "settings.py").read_text()
    read = set(re.findall(r'"([A-Z][A-Z0-9_]+)"', source))
    ours = [service for service in SERVICES.values() if "build" in service]  # PostgreSQL's image reads its own
    assert len(ours) >= len(EXPECTED_COMMANDS)
    for service in ours:
        unknown = set(service.get("environment", {})) - read - THIRD_PARTY_VARIABLES
        assert unknown == set(), f"set in compose.yml but read by nothing: {unknown}"


def test_secrets_come_from_the_environment_not_the_file():
    environment = SERVICES["web"]["environment"]
    for name in ("WIDGET_SESSION_SECRET", "CONSOLE_SESSION_KEY", "SMS_CONVERSATION_SECRET", "TWILIO_AUTH_TOKEN",
                 "CLINIC_WEBHOOK_SECRET"):
        assert environment[name] == "${" + name + "}"
    for name in ("TRACKER_URL", "CLINIC_DATABASE_URL"):
        assert "${POSTGRES_PASSWORD}" in environment[name]
    for rasa in ("rasa-1", "rasa-2"):
        assert SERVICES[rasa]["environment"]["REST_API_TOKEN"] == "${REST_API_TOKEN}"
        assert SERVICES[rasa]["environment"]["TRACKER_URL"] == environment["TRACKER_URL"]


def test_nginx_publishes_the_visitor_channels_and_not_rest():
    nginx = (settings.PROJECT_DIR / "deploy" / "nginx.conf").read_text()
    published = re.findall(r"location\s+(?:=\s+)?(\S+)\s*\{\s*(?:[^}]*?)proxy_pass http://rasa", nginx)
    assert sorted(published) == ["/socket.io/", "/webhooks/twilio_sms/webhook"]


def health_path(service: str) -> str:
    test = SERVICES[service]["healthcheck"]["test"]
    return urlsplit(re.search(r"http://[^']+", " ".join(test)).group()).path


def test_health_checks_ask_the_readiness_routes():
    assert health_path("rasa-1") == urlsplit(processes.rasa_readiness_url(5005)).path
    assert health_path("actions") == "/health"  # rasa_sdk's; the action server stays ready with the database down
    assert health_path("web") == health_path("console") == "/readyz"


def test_the_web_app_and_console_serve_their_readiness_route(tmp_path):
    from clinic_assistant.console.app import create_app as create_console
    from clinic_assistant.web.app import create_app as create_web

    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    console = create_console(url, url, session_key=bytes(32), index_seconds=None)
    for app in (create_web(), console):
        paths = {resource.canonical for resource in app.router.resources()}
        assert "/readyz" in paths
