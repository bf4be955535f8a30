"""Command line: ``python -m clinic_assistant COMMAND``.

Commands: run, train, shell, spacy-model, migrate, web, deliver, requests, console, staff, retention.
"""

import argparse
import signal
import subprocess
import sys
import time

from clinic_assistant import admin, settings, staff_cli
from clinic_assistant.delivery import worker
from clinic_assistant.processes import assistant, process_environment
from clinic_assistant.store.db import StoreUnavailable
from clinic_assistant.store.schema import upgrade

# Rasa and spaCy (seconds to import, TensorFlow included) are imported only by the commands that use
# them, so the delivery worker and the staff's `requests` commands start at once and stay small.


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _stop_on_sigterm() -> None:
    """Treat SIGTERM (a supervisor stopping us) like Ctrl-C, so the servers stop too."""
    signal.signal(signal.SIGTERM, _interrupt)


def migrate_clinic_database() -> None:
    """Bring the clinic database to the newest schema; the assistant runs without it."""
    try:
        upgrade(settings.CLINIC_DATABASE_URL)
    except StoreUnavailable as error:
        # Crisis replies never need it; flags wait in the spool until it is back.
        print(f"Clinic database unavailable, starting anyway: {error}", file=sys.stderr, flush=True)


def run(_: argparse.Namespace) -> None:
    """Train if needed, then serve REST on RASA_PORT and actions on ACTIONS_PORT."""
    from clinic_assistant.training import ensure_trained_model

    _stop_on_sigterm()
    model = ensure_trained_model()
    settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
    migrate_clinic_database()
    with assistant(model, web_port=settings.WEB_PORT, console_port=settings.CONSOLE_PORT) as services:
        print(
            f"Assistant ready: demo page with the chat widget at http://{settings.WEB_HOST}:{settings.WEB_PORT}/, "
            f"staff console at http://{settings.CONSOLE_HOST}:{settings.CONSOLE_PORT}/ "
            "(`python -m clinic_assistant staff create NAME --role admin` makes an account), "
            f"REST at http://{settings.RASA_HOST}:{settings.RASA_PORT}/webhooks/rest/webhook (Ctrl-C stops it)",
            flush=True,
        )
        try:
            while all(s.process.poll() is None for s in services.values()):
                time.sleep(1)
        except KeyboardInterrupt:
            print("Stopping...", flush=True)
        else:
            stopped = [s.name for s in services.values() if s.process.poll() is not None]
            sys.exit(f"Stopped unexpectedly: {', '.join(stopped)}")


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


def main() -> None:
    parser = argparse.ArgumentParser(prog="clinic_assistant")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help=run.__doc__).set_defaults(func=run)
    commands.add_parser("shell", help=shell.__doc__).set_defaults(func=shell)
    commands.add_parser("train", help=train.__doc__).set_defaults(func=train)
    commands.choices["train"].add_argument("--force", action="store_true")
    commands.add_parser("spacy-model", help=spacy_model.__doc__).set_defaults(func=spacy_model)
    commands.add_parser("migrate", help="Bring the clinic database to the newest schema").set_defaults(
        func=lambda _: upgrade(settings.CLINIC_DATABASE_URL)
    )
    commands.add_parser("web", help=serve_web.__doc__).set_defaults(func=serve_web)
    commands.add_parser("deliver", help=worker.main.__doc__).set_defaults(func=lambda _: worker.main())
    admin.add_commands(commands.add_parser("requests", help="Consultation requests: list, show, mark-contacted, retry"))
    commands.add_parser("console", help=serve_console.__doc__).set_defaults(func=serve_console)
    staff_cli.add_commands(commands.add_parser("staff", help="Console accounts: create, list, set-role, deactivate"))
    retention_parser = commands.add_parser("retention", help=retention.__doc__)
    retention_parser.add_argument("--days", type=int, help="instead of RETENTION_DAYS")
    retention_parser.set_defaults(func=retention)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
