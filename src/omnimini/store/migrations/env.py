"""Alembic environment: always online, on the connection `omnimini.store.migrate` hands in
(or one made from `sqlalchemy.url` when run by the `alembic` command)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text

from omnimini.store.base import Base

config = context.config
# Revisions are written by hand (op.create_table ...); autogenerate is only a helper for writing
# them, so target_metadata holds whatever tables the process has imported (see store/schema.py).
target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata,
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Servers starting together on one PostgreSQL: the first migrates, the rest wait.
            connection.execute(text("SELECT pg_advisory_xact_lock(7243911)"))
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as conn:
        _run(conn)
