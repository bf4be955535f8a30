"""Alembic environment for the clinic database, run by ``clinic_assistant.store.schema``.

``schema.upgrade`` passes an open connection (``config.attributes["connection"]``) so the
migrations run in its transaction; without one (e.g. autogenerate) the configured URL is used.
"""

from alembic import context
from sqlalchemy.engine import Connection

from clinic_assistant.store.db import engine_for
from clinic_assistant.store.tables import metadata


def _migrate(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        compare_type=True,
        # SQLite can't ALTER most things: later revisions' alters become copy-and-move batches.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_offline() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    context.configure(url=url, target_metadata=metadata, literal_binds=True, render_as_batch=url.startswith("sqlite"))
    with context.begin_transaction():
        context.run_migrations()


def _run_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _migrate(connection)
        return
    with engine_for(context.config.get_main_option("sqlalchemy.url")).begin() as connection:
        _migrate(connection)


if context.is_offline_mode():
    _run_offline()
else:
    _run_online()
