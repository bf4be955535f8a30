"""Staff accounts of the console, on the command line (the first admin is created here).

    python -m clinic_assistant staff create USERNAME --role admin|reviewer [--password-stdin]
    python -m clinic_assistant staff list
    python -m clinic_assistant staff set-role USERNAME admin|reviewer
    python -m clinic_assistant staff deactivate USERNAME
    python -m clinic_assistant staff activate USERNAME
    python -m clinic_assistant staff set-password USERNAME [--password-stdin]

Passwords are asked twice (not echoed), or read as one line from stdin with --password-stdin.
Every change is audited with the actor "command line".
"""

import argparse
import getpass
import sys
from datetime import datetime, timezone
from typing import Callable, List, Optional

from sqlalchemy.engine import Engine

from clinic_assistant import settings
from clinic_assistant.store import staff
from clinic_assistant.store.db import StoreUnavailable, engine_for
from clinic_assistant.store.review import audit
from clinic_assistant.store.schema import upgrade

ACTOR = "command line"
Command = Callable[[Engine, argparse.Namespace], None]


def add_commands(parser: argparse.ArgumentParser) -> None:
    """Add ``create``, ``list``, ``set-role``, ``deactivate``, ``activate`` and ``set-password`` under ``parser``."""
    commands = parser.add_subparsers(dest="staff_command", required=True)
    create = commands.add_parser("create", help="A new console account")
    create.add_argument("username")
    create.add_argument("--role", choices=staff.ROLES, required=True)
    create.add_argument("--password-stdin", action="store_true", help="read the password as one line from stdin")
    create.set_defaults(func=_on_database(create_command))
    commands.add_parser("list", help="Every account").set_defaults(func=_on_database(list_command))
    role = commands.add_parser("set-role", help="Change an account's role")
    role.add_argument("username")
    role.add_argument("role", choices=staff.ROLES)
    role.set_defaults(func=_on_database(set_role_command))
    for name, help_text in (
        ("deactivate", "Stop an account from logging in (its sessions end at once)"),
        ("activate", "Let a deactivated account log in again"),
    ):
        command = commands.add_parser(name, help=help_text)
        command.add_argument("username")
        command.set_defaults(func=_on_database(set_active_command), active=name == "activate")
    password = commands.add_parser("set-password", help="Give an account a new password (its sessions end)")
    password.add_argument("username")
    password.add_argument("--password-stdin", action="store_true", help="read the password as one line from stdin")
    password.set_defaults(func=_on_database(set_password_command))


def _on_database(command: Command) -> Callable[[argparse.Namespace], None]:
    """``command`` on the (migrated) clinic database, its failures turned into a message and exit status 1."""

    def run(args: argparse.Namespace) -> None:
        try:
            upgrade(settings.CLINIC_DATABASE_URL)  # so the first admin can be made on a fresh install
            command(engine_for(settings.CLINIC_DATABASE_URL), args)
        except staff.UserExists as error:
            sys.exit(f"{error}: choose another username.")
        except staff.UserNotFound as error:
            sys.exit(str(error))
        except ValueError as error:
            sys.exit(str(error))
        except StoreUnavailable as error:
            sys.exit(f"Clinic database unavailable: {error}")

    return run


def read_password(from_stdin: bool) -> str:
    """The new password: one line of stdin, or typed twice at a prompt that does not echo it."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Password again: ") != password:
        raise ValueError("The passwords do not match.")
    return password


def create_command(engine: Engine, args: argparse.Namespace) -> None:
    # The name is checked before the password is asked, so a taken or invalid name costs no typing.
    username = staff.check_username(args.username)
    if any(user.username == username for user in staff.list_users(engine)):
        raise staff.UserExists(username)
    password = read_password(args.password_stdin)
    user = staff.create_user(engine, username, password, args.role, None, datetime.now(timezone.utc))
    audit(engine, ACTOR, "create_user", user.username, f"role {user.role}")
    print(f"Created {user.role} {user.username}.")


def list_command(engine: Engine, _: argparse.Namespace) -> None:
    users = staff.list_users(engine)
    if not users:
        print("No staff accounts. Create the first admin with: staff create USERNAME --role admin")
        return
    print(table(users, datetime.now(timezone.utc)))


def set_role_command(engine: Engine, args: argparse.Namespace) -> None:
    staff.set_role(engine, args.username, args.role)
    username = staff.normalise_username(args.username)
    audit(engine, ACTOR, "set_role", username, args.role)
    print(f"{username} is now {args.role}.")


def set_active_command(engine: Engine, args: argparse.Namespace) -> None:
    staff.set_active(engine, args.username, args.active)
    username = staff.normalise_username(args.username)
    audit(engine, ACTOR, "activate_user" if args.active else "deactivate_user", username)
    print(f"{username} {'activated' if args.active else 'deactivated'}.")


def set_password_command(engine: Engine, args: argparse.Namespace) -> None:
    staff.get_user(engine, args.username)  # an unknown name is said before the password is asked
    staff.set_password(engine, args.username, read_password(args.password_stdin))
    username = staff.normalise_username(args.username)
    audit(engine, ACTOR, "reset_password", username)
    print(f"New password set for {username}.")


def table(users: List[staff.StaffUser], now: datetime) -> str:
    """Aligned columns: username, role, status, last login."""
    header = ("USERNAME", "ROLE", "STATUS", "LAST LOGIN")
    rows = [(user.username, user.role, _status(user, now), _time(user.last_login_at)) for user in users]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                     for row in [header, *rows])


def _status(user: staff.StaffUser, now: datetime) -> str:
    if not user.active:
        return "deactivated"
    return "active"


def _time(moment: Optional[datetime]) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M %Z") if moment else "never"


def main(argv: Optional[List[str]] = None) -> None:
    """``staff`` alone, as ``python -m clinic_assistant staff`` runs it (tests call it with ``argv``)."""
    parser = argparse.ArgumentParser(prog="clinic_assistant staff", description=__doc__.split("\n")[0])
    add_commands(parser)
    args = parser.parse_args(argv)
    args.func(args)
