"""Command line: ``python -m clinic_assistant COMMAND``.

Commands: run, train, shell, spacy-model, migrate, web, deliver, requests, console, staff, retention.
"""

import argparse
import logging
import os
import subprocess
import sys
from typing import Callable, Dict, List, Optional

from clinic_assistant import settings
from clinic_assistant.processes import assistant, process_environment, service_specs
from clinic_assistant.supervisor import StopSignals, Supervisor, run_once

# Each command imports what it needs when it runs, so Rasa and spaCy (seconds to import, TensorFlow included),
# SQLAlchemy and Alembic stay out of the run command's supervisor, which only starts and watches processes, and
# the delivery worker and the staff's `requests` commands start at once and stay small.

logger = logging.getLogger("clinic_assistant.run")


def migrate_clinic_database() -> bool:
    """Bring the clinic database to the newest schema; False (and why, on stderr) while it is unreachable."""
    from clinic_assistant.store.db import StoreUnavailable
    from clinic_assistant.store.schema import upgrade

    try:
        upgrade(settings.CLINIC_DATABASE_URL)
    except StoreUnavailable as error:
        print(f"Clinic database unavailable: {error}", file=sys.stderr, flush=True)
        return False
    return True


def migrate(_: argparse.Namespace) -> None:
    """Bring the clinic database to the newest schema (exit status 75 while it is unreachable)."""
    if not migrate_clinic_database():
        sys.exit(os.EX_TEMPFAIL)


def run(_: argparse.Namespace) -> None:
    """Train if needed and migrate (each in a child process), then serve, restarting any process that crashes."""
    from clinic_assistant import logs
    from clinic_assistant.training import model_path

    logs.configure("supervisor")
    settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
    with StopSignals() as signals:
        problem = _prepare(signals)
        if problem is not None:
            sys.exit(problem or 0)
        specs = service_specs(model_path(), web_port=settings.WEB_PORT, console_port=settings.CONSOLE_PORT)
        sys.exit(Supervisor(specs).serve(signals, _ready_message()))


def _prepare(signals: StopSignals) -> Optional[str]:
    """Train and migrate in child processes: None when done, else why not ("" when a stop signal came)."""
    command = [sys.executable, "-m", "clinic_assistant"]
    trained = run_once("training", [*command, "train"], signals)
    if trained is None:
        return ""
    if trained != 0:
        return f"Training failed (exit code {trained})"
    migrated = run_once("migration", [*command, "migrate"], signals)
    if migrated is None:
        return ""
    if migrated == os.EX_TEMPFAIL:
        # Crisis replies never need it; flags wait in the spool until it is back.
        logger.warning("Clinic database unavailable: starting anyway")
    elif migrated != 0:
        return f"Clinic database migration failed (exit code {migrated})"
    return None


def _ready_message() -> str:
    return (
        f"Assistant ready: demo page with the chat widget at http://{settings.WEB_HOST}:{settings.WEB_PORT}/, "
        f"staff console at http://{settings.CONSOLE_HOST}:{settings.CONSOLE_PORT}/ "
        "(`python -m clinic_assistant staff create NAME --role admin` makes an account), "
        f"REST at http://{settings.RASA_HOST}:{settings.RASA_PORT}/webhooks/rest/webhook (Ctrl-C stops it)"
    )


def shell(_: argparse.Namespace) -> None:
    """Talk to the assistant in the terminal (starts its own action server)."""
    from clinic_assistant.training import ensure_trained_model

    model = ensure_trained_model()
    settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
    migrate_clinic_database()
    with assistant(model, with_rasa=False):
        command = [sys.executable, "-m", "rasa", "shell", "--model", str(model), "--endpoints", "endpoints.yml"]
        subprocess.run(command, cwd=settings.PROJECT_DIR, env=process_environment())


def train(args: argparse.Namespace) -> None:
    """Train the model if its inputs changed."""
    from clinic_assistant.training import ensure_trained_model

    print(ensure_trained_model(force=args.force))


def spacy_model(_: argparse.Namespace) -> None:
    """Build the spaCy pipeline."""
    from clinic_assistant.nlp.build_model import ensure_model

    print(ensure_model())


def serve_web(_: argparse.Namespace) -> None:
    """Serve the web app (demo page, widget files) on WEB_PORT."""
    from clinic_assistant.web.app import main as web_main

    web_main()


def serve_console(_: argparse.Namespace) -> None:
    """Serve the staff console on CONSOLE_PORT (the clinic database migrated first)."""
    from clinic_assistant.console.app import main as console_main

    console_main()


def retention(args: argparse.Namespace) -> None:
    """Delete conversations older than RETENTION_DAYS (or --days) days, except those with a request not closed."""
    from clinic_assistant.console.retention import command

    command(args.days)


def deliver(_: argparse.Namespace) -> None:
    """Deliver consultation requests to CLINIC_WEBHOOK_URL until SIGINT or SIGTERM."""
    from clinic_assistant.delivery import worker

    worker.main()


def requests_command(argv: List[str]) -> None:
    """Consultation requests: list, show, mark-contacted, retry."""
    from clinic_assistant import admin

    parser = argparse.ArgumentParser(prog="clinic_assistant requests", description=requests_command.__doc__)
    admin.add_commands(parser)
    args = parser.parse_args(argv)
    args.func(args)


def staff_command(argv: List[str]) -> None:
    """Console accounts: create, list, set-role, deactivate."""
    from clinic_assistant import staff_cli

    staff_cli.main(argv)


# Commands with subcommands of their own, which parse the rest of the command line themselves: building their
# parsers imports the clinic database's modules, which the other commands don't need.
DELEGATED: Dict[str, Callable[[List[str]], None]] = {"requests": requests_command, "staff": staff_command}


def main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] in DELEGATED:
        DELEGATED[argv[0]](argv[1:])
        return
    parser = argparse.ArgumentParser(prog="clinic_assistant")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help=run.__doc__).set_defaults(func=run)
    commands.add_parser("shell", help=shell.__doc__).set_defaults(func=shell)
    commands.add_parser("train", help=train.__doc__).set_defaults(func=train)
    commands.choices["train"].add_argument("--force", action="store_true")
    commands.add_parser("spacy-model", help=spacy_model.__doc__).set_defaults(func=spacy_model)
    commands.add_parser("migrate", help=migrate.__doc__).set_defaults(func=migrate)
    commands.add_parser("web", help=serve_web.__doc__).set_defaults(func=serve_web)
    commands.add_parser("deliver", help=deliver.__doc__).set_defaults(func=deliver)
    for name, command in DELEGATED.items():
        commands.add_parser(name, help=command.__doc__, add_help=False)  # listed here, parsed by ``command``
    commands.add_parser("console", help=serve_console.__doc__).set_defaults(func=serve_console)
    retention_parser = commands.add_parser("retention", help=retention.__doc__)
    retention_parser.add_argument("--days", type=int, help="instead of RETENTION_DAYS")
    retention_parser.set_defaults(func=retention)
    args = parser.parse_args(argv)
    args.func(args)


if __name__ == "__main__":
    main()
