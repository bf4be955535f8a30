"""Bring the clinic database to the newest schema with Alembic, configured in code (no alembic.ini).

    python -m clinic_assistant.store.schema    # migrate CLINIC_DATABASE_URL to the newest revision

After changing ``tables.py``, write the next revision with autogenerate and review it::

    from alembic import command
    command.revision(alembic_config(url), "what changed", autogenerate=True, rev_id="0002")
"""

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Connection

from clinic_assistant import settings
from clinic_assistant.store.db import begin, engine_for

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Any constant: PostgreSQL advisory lock serializing migrations between processes.
_MIGRATION_LOCK = 7_310_001


def alembic_config(url: str) -> Config:
    """Alembic's configuration for the database at ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    # Config values are %-interpolated: escape a URL-encoded password's "%".
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(url: str) -> None:
    """Migrate the database at ``url`` to the newest revision; nothing to do if it is there."""
    config = alembic_config(url)
    with begin(engine_for(url)) as connection:
        _lock_migrations(connection)
        config.attributes["connection"] = connection  # env.py migrates in this transaction
        command.upgrade(config, "head")


def _lock_migrations(connection: Connection) -> None:
    # Processes starting together (action server, test workers) must not both create the tables.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})


if __name__ == "__main__":
    upgrade(settings.CLINIC_DATABASE_URL)
