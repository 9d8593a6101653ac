"""Where the tables are declared. Tables belong to the package that owns them (access/, metering/,
batches/, arena/ ...), all on `omnimini.store.Base`; this list names those modules so that tools
(`omnimini db check`, `omnimini db revision --autogenerate`, the schema test) can load every table
without the store importing a higher layer at import time. Add your module here: one line."""

from __future__ import annotations

import importlib

from sqlalchemy import MetaData

TABLE_MODULES: list[str] = [
    "omnimini.store.files",
    "omnimini.access.tables",
    "omnimini.metering.tables",
    "omnimini.batches.tables",
    "omnimini.arena.tables",
    "omnimini.service.audio_ids",          # audio reply ids (issue 9)
]


def import_tables() -> MetaData:
    for name in TABLE_MODULES:
        importlib.import_module(name)
    from omnimini.store.base import Base
    return Base.metadata


def differences(store) -> list:
    """Alembic's comparison of the migrated database with the declared tables; [] when in sync."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    metadata = import_tables()
    with store.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return compare_metadata(ctx, metadata)
