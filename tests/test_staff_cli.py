"""``python -m clinic_assistant staff ...``: console accounts on the command line, on SQLite and PostgreSQL."""

import io
import subprocess
import sys
import uuid
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from clinic_assistant import settings, staff_cli
from clinic_assistant.processes import process_environment
from clinic_assistant.settings import PROJECT_DIR
from clinic_assistant.store import staff
from clinic_assistant.store.db import engine_for
from clinic_assistant.store.tables import audit_log

PASSWORD = "a long enough password"


@pytest.fixture
def clinic(clinic_db_url, monkeypatch):
    """The clinic database the commands use (not migrated: the commands do that themselves)."""
    monkeypatch.setattr(settings, "CLINIC_DATABASE_URL", clinic_db_url)
    return engine_for(clinic_db_url)


@pytest.fixture
def name() -> str:
    return f"staff-{uuid.uuid4().hex[:10]}"  # unique: the PostgreSQL database is shared by the run


def run(*argv: str, stdin: str = "") -> None:
    sys.stdin = io.StringIO(stdin)
    try:
        staff_cli.main(list(argv))
    finally:
        sys.stdin = sys.__stdin__


def now() -> datetime:
    return datetime.now(timezone.utc)


def test_create_an_admin_with_a_password_from_stdin(clinic, name, capsys):
    run("create", name, "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n")
    assert capsys.readouterr().out.strip() == f"Created admin {name}."
    user = staff.authenticate(clinic, name, PASSWORD, now())
    assert user.role == "admin" and user.active
    with clinic.connect() as connection:
        entry = connection.execute(select(audit_log).where(audit_log.c.target == name)).one()
    assert (entry.actor, entry.action, entry.detail) == ("command line", "create_user", "role admin")


def test_a_too_short_password_is_refused(clinic, name):
    with pytest.raises(SystemExit) as refused:
        run("create", name, "--role", "reviewer", "--password-stdin", stdin="short pass\n")
    assert refused.value.code == "The password must have at least 12 characters."
    with pytest.raises(staff.UserNotFound):
        staff.get_user(clinic, name)


def test_a_taken_username_is_refused_before_a_password_is_asked(clinic, name):
    run("create", name, "--role", "reviewer", "--password-stdin", stdin=PASSWORD)
    with pytest.raises(SystemExit) as refused:
        run("create", name.upper(), "--role", "admin", "--password-stdin", stdin="")
    assert refused.value.code == f"A staff user named {name} already exists: choose another username."
    assert staff.get_user(clinic, name).role == "reviewer"


def test_an_invalid_username_is_refused(clinic):
    with pytest.raises(SystemExit) as refused:
        run("create", "no spaces allowed", "--role", "admin", "--password-stdin", stdin=PASSWORD)
    assert "The username must have 2 to 64 characters" in refused.value.code


def test_the_password_is_asked_twice_and_must_match(clinic, name, monkeypatch, capsys):
    answers = iter([PASSWORD, PASSWORD + "x"])
    monkeypatch.setattr(staff_cli.getpass, "getpass", lambda prompt: next(answers))
    with pytest.raises(SystemExit) as refused:
        run("create", name, "--role", "reviewer")
    assert refused.value.code == "The passwords do not match."
    answers = iter([PASSWORD, PASSWORD])
    run("create", name, "--role", "reviewer")
    assert capsys.readouterr().out.strip() == f"Created reviewer {name}."


def test_list_set_role_deactivate_and_activate(clinic, name, capsys):
    run("create", name, "--role", "reviewer", "--password-stdin", stdin=PASSWORD)
    capsys.readouterr()
    run("list")
    header, *_ = capsys.readouterr().out.splitlines()
    assert header.split() == ["USERNAME", "ROLE", "STATUS", "LAST", "LOGIN"]
    assert listed(name, capsys) == [name, "reviewer", "active", "never"]

    run("set-role", name, "admin")
    assert capsys.readouterr().out.strip() == f"{name} is now admin."
    run("deactivate", name)
    assert capsys.readouterr().out.strip() == f"{name} deactivated."
    with pytest.raises(staff.LoginFailed):
        staff.authenticate(clinic, name, PASSWORD, now())
    assert listed(name, capsys) == [name, "admin", "deactivated", "never"]
    run("activate", name)
    assert staff.authenticate(clinic, name, PASSWORD, now()).role == "admin"
    actions = {row.action for row in _audit(clinic, name)}
    assert {"create_user", "set_role", "deactivate_user", "activate_user"} <= actions


def test_set_password(clinic, name, capsys):
    run("create", name, "--role", "reviewer", "--password-stdin", stdin=PASSWORD)
    capsys.readouterr()
    run("set-password", name, "--password-stdin", stdin="the new long password\n")
    assert capsys.readouterr().out.strip() == f"New password set for {name}."
    assert staff.authenticate(clinic, name, "the new long password", now()).username == name
    with pytest.raises(SystemExit) as refused:
        run("set-password", name, "--password-stdin", stdin="short\n")
    assert "at least 12 characters" in refused.value.code


def test_an_unknown_user_is_said(clinic):
    for command in (["set-role", "nobody-at-all", "admin"], ["deactivate", "nobody-at-all"],
                    ["set-password", "nobody-at-all", "--password-stdin"]):
        with pytest.raises(SystemExit) as refused:
            run(*command, stdin=PASSWORD)
        assert refused.value.code == "No staff user nobody-at-all", command


def listed(name: str, capsys) -> list:
    """The cells of ``name``'s row in ``staff list``."""
    run("list")
    return next(row.split() for row in capsys.readouterr().out.splitlines() if row.startswith(name + " "))


def _audit(engine, target: str) -> list:
    with engine.connect() as connection:
        return connection.execute(select(audit_log).where(audit_log.c.target == target)).all()


# ---- As staff run it: python -m clinic_assistant staff ... ----


def staff_command(url: str, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = process_environment({"CLINIC_DATABASE_URL": url})
    return subprocess.run(
        [sys.executable, "-m", "clinic_assistant", "staff", *args],
        cwd=PROJECT_DIR, env=env, input=stdin, capture_output=True, text=True, timeout=120,
    )


def test_the_staff_command_on_a_fresh_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"  # not migrated: the command does it, so the first admin can be made
    created = staff_command(url, "create", "first-admin", "--role", "admin", "--password-stdin", stdin=PASSWORD)
    assert (created.returncode, created.stdout.strip()) == (0, "Created admin first-admin."), created.stderr
    listed = staff_command(url, "list")
    assert listed.returncode == 0 and "first-admin" in listed.stdout and "admin" in listed.stdout

    duplicate = staff_command(url, "create", "first-admin", "--role", "reviewer", "--password-stdin", stdin=PASSWORD)
    assert duplicate.returncode != 0
    assert "A staff user named first-admin already exists: choose another username." in duplicate.stderr
    short = staff_command(url, "create", "second", "--role", "reviewer", "--password-stdin", stdin="too short")
    assert short.returncode != 0 and "at least 12 characters" in short.stderr
    wrong_role = staff_command(url, "create", "third", "--role", "owner", "--password-stdin", stdin=PASSWORD)
    assert wrong_role.returncode == 2 and "invalid choice" in wrong_role.stderr
