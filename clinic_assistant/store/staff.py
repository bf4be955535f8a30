"""Staff accounts of the console: passwords hashed with Argon2, logins checked in the same time whoever they name.

Failed logins lock no account (anyone could then keep staff out by failing on purpose): the console throttles
them per username and client address (``console.security.LoginBackoff``).

Usernames are case-insensitive (stored lower-case). Like ``db``, every function raises
``StoreUnavailable`` when the database can't be used and ``ValueError`` for invalid values.
"""

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache
from hashlib import sha256
from typing import List, Optional, Tuple

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import Select

from clinic_assistant.store.db import as_utc, begin, utc
from clinic_assistant.store.tables import STAFF_ROLES, staff_users

ROLES = STAFF_ROLES
PASSWORD_MIN_LENGTH = 12
# Long enough for any passphrase; bounded so nobody makes the server hash megabytes.
PASSWORD_MAX_LENGTH = 1024
USERNAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._@-]{1,63}")

_hasher = PasswordHasher()


class UserNotFound(LookupError):
    """No staff account has this username."""

    def __init__(self, username: str) -> None:
        super().__init__(f"No staff user {username}")
        self.username = username


class UserExists(ValueError):
    """A staff account with this username exists already."""

    def __init__(self, username: str) -> None:
        super().__init__(f"A staff user named {username} already exists")
        self.username = username


class LoginFailed(Exception):
    """Wrong username or password (which one is not said), or an inactive account."""

    def __init__(self, known: bool) -> None:
        super().__init__("Wrong username or password")
        self.known = known  # an active account has this username: for the audit log, never for the visitor


@dataclass(frozen=True)
class StaffUser:
    id: int
    username: str
    role: str  # one of ROLES
    active: bool
    last_login_at: Optional[datetime]  # aware


_USER_COLUMNS = [staff_users.c[name] for name in ("id", "username", "role", "active", "last_login_at")]


def normalise_username(username: str) -> str:
    return username.strip().lower()


def check_username(username: str) -> str:
    """The username as stored (lower-case); ValueError if it is not a valid one."""
    username = normalise_username(username)
    if not USERNAME_PATTERN.fullmatch(username):
        raise ValueError(
            "The username must have 2 to 64 characters: letters, digits and . _ @ - (starting with a letter or digit)."
        )
    return username


def check_password(password: str) -> None:
    """ValueError unless ``password`` is long enough (and not absurdly long)."""
    if len(password) < PASSWORD_MIN_LENGTH:
        raise ValueError(f"The password must have at least {PASSWORD_MIN_LENGTH} characters.")
    if len(password) > PASSWORD_MAX_LENGTH:
        raise ValueError(f"The password must have at most {PASSWORD_MAX_LENGTH} characters.")


def _check_role(role: str) -> None:
    if role not in ROLES:
        raise ValueError(f"The role must be one of {', '.join(ROLES)}.")


def create_user(
    engine: Engine,
    username: str,
    password: str,
    role: str,
    created_by: Optional[str],
    now: Optional[datetime] = None,
) -> StaffUser:
    """A new active account; ``UserExists`` if the username is taken, ValueError for invalid values.

    ``created_by``: the admin's username, or None when made on the command line. ``now``: aware, default the clock.
    """
    username = check_username(username)
    check_password(password)
    _check_role(role)
    values = {
        "username": username,
        "password_hash": _hasher.hash(password),
        "role": role,
        "active": True,
        "created_at": utc(now or datetime.now(timezone.utc)),
        "created_by": created_by,
    }
    try:
        with begin(engine) as connection:
            connection.execute(staff_users.insert().values(values))
    except IntegrityError as error:
        raise UserExists(username) from error
    return get_user(engine, username)


def list_users(engine: Engine) -> List[StaffUser]:
    """Every account, by username."""
    with begin(engine) as connection:
        rows = connection.execute(select(*_USER_COLUMNS).order_by(staff_users.c.username)).all()
    return [_user(row) for row in rows]


def get_user(engine: Engine, username: str) -> StaffUser:
    """The account named ``username``; ``UserNotFound`` if there is none."""
    username = normalise_username(username)
    with begin(engine) as connection:
        row = connection.execute(select(*_USER_COLUMNS).where(staff_users.c.username == username)).first()
    if row is None:
        raise UserNotFound(username)
    return _user(row)


def session_user(engine: Engine, user_id: int) -> Optional[Tuple[StaffUser, str]]:
    """The account behind a login session, and its credential stamp; None if it was deleted.

    The stamp changes with the password, so a reset ends the sessions opened with the old one.
    """
    with begin(engine) as connection:
        row = connection.execute(
            select(*_USER_COLUMNS, staff_users.c.password_hash).where(staff_users.c.id == user_id)
        ).first()
    if row is None:
        return None
    return _user(row), credential_stamp(row.password_hash)


def credential_stamp(password_hash: str) -> str:
    """A short fingerprint of a password hash, kept in the session cookie instead of the hash itself."""
    return sha256(password_hash.encode()).hexdigest()[:16]


def set_role(engine: Engine, username: str, role: str) -> None:
    _check_role(role)
    _update(engine, username, role=role)


def set_active(engine: Engine, username: str, active: bool) -> None:
    """Deactivate (its sessions stop working) or reactivate an account."""
    _update(engine, username, active=active)


def set_password(engine: Engine, username: str, password: str) -> None:
    """A new password (it ends the account's sessions)."""
    check_password(password)
    _update(engine, username, password_hash=_hasher.hash(password))


def _update(engine: Engine, username: str, **values: object) -> None:
    username = normalise_username(username)
    with begin(engine) as connection:
        result = connection.execute(staff_users.update().where(staff_users.c.username == username).values(values))
    if result.rowcount == 0:
        raise UserNotFound(username)


def authenticate(engine: Engine, username: str, password: str, now: datetime) -> StaffUser:
    """The active account if the password is right; else ``LoginFailed``, alike for an unknown username, an
    inactive account and a wrong password.

    Every failure does the same work, one Argon2 verification and no write, so neither the answer nor its time
    tells whether the username exists. A success records the login (clearing a lock from before accounts stopped
    being locked) and rehashes the password if the hasher's parameters changed.
    """
    now = utc(now)
    username = normalise_username(username)
    dummy = _dummy_hash()  # made before the lookup: the first call costs the same whoever it names
    row = _account(engine, select(staff_users), username)
    usable = row is not None and bool(row.active)
    # Without a usable account, a dummy hash is verified: the same Argon2 work as for a wrong password.
    # (Outside the transaction: no connection is held for the hashing.)
    if not _verify(row.password_hash if usable else dummy, password) or not usable:
        raise LoginFailed(known=usable)
    with begin(engine) as connection:
        _record_login(connection, row, password, now)
    return get_user(engine, username)


def active_username(engine: Engine, username: str) -> Optional[str]:
    """The username as stored if an active account has it, else None: for the audit log, never for the visitor."""
    row = _account(engine, select(staff_users.c.username, staff_users.c.active), normalise_username(username))
    return row.username if row is not None and row.active else None


def _account(engine: Engine, query: Select, username: str) -> Optional[Row]:
    """The row ``query`` selects for ``username``; None without one."""
    if "\x00" in username:
        return None  # no username holds NUL, and PostgreSQL refuses it in a query
    with begin(engine) as connection:
        return connection.execute(query.where(staff_users.c.username == username)).first()


def _record_login(connection: Connection, row: Row, password: str, now: datetime) -> None:
    values = {"last_login_at": now}
    if _hasher.check_needs_rehash(row.password_hash):
        values["password_hash"] = _hasher.hash(password)
    connection.execute(staff_users.update().where(staff_users.c.id == row.id).values(values))


def _verify(password_hash: str, password: str) -> bool:
    if len(password) > PASSWORD_MAX_LENGTH:
        return False  # no password this long was ever accepted
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    return _hasher.hash("not any staff member's password")


def _user(row: object) -> StaffUser:
    return StaffUser(
        id=row.id,
        username=row.username,
        role=row.role,
        active=bool(row.active),
        last_login_at=as_utc(row.last_login_at) if row.last_login_at else None,
    )


def active_admins(engine: Engine) -> int:
    """How many active admin accounts there are (the console must keep at least one)."""
    query = select(func.count()).select_from(staff_users).where(staff_users.c.role == "admin", staff_users.c.active)
    with begin(engine) as connection:
        return connection.execute(query).scalar_one()
