"""Alembic, run programmatically from the migrations shipped inside this package.

`omnimini serve` upgrades to the newest revision at start-up; `omnimini db` exposes the same for
operators and for engineers adding a revision (`omnimini db revision -m "..."`, `omnimini db heads`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

if TYPE_CHECKING:
    from omnimini.store.db import Store

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


def config(store: "Store | None" = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("file_template", "%%(rev)s")       # our revision ids already carry the slug
    if store is not None:
        cfg.set_main_option("sqlalchemy.url", store.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


def script() -> ScriptDirectory:
    return ScriptDirectory.from_config(config())


def heads() -> list[str]:
    return list(script().get_heads())


def upgrade(store: "Store", revision: str = "head") -> None:
    cfg = config(store)
    # One transaction for the whole upgrade (Alembic's "sharing a connection" recipe).
    with store.engine.execution_options(write=True).begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current(store: "Store") -> tuple[str, ...]:
    with store.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_heads()


def revision(message: str, *, autogenerate: bool = False, store: "Store | None" = None) -> str:
    """Write a new revision file on top of the single head; returns its path."""
    if len(heads()) > 1:
        raise RuntimeError(f"the migrations have several heads {heads()}: chain them first")
    cfg = config(store)
    # alembic_version.version_num is VARCHAR(32): PostgreSQL refuses longer revision ids.
    slug = "".join(c if c.isalnum() else "_" for c in message.lower()).strip("_")[:27]
    rev_id = f"{len(list(script().walk_revisions())) + 1:04d}_{slug}"
    if autogenerate:
        from omnimini.store.schema import import_tables
        import_tables()
        with store.engine.connect() as conn:
            cfg.attributes["connection"] = conn
            sc = command.revision(cfg, message=message, rev_id=rev_id, autogenerate=True)
    else:
        sc = command.revision(cfg, message=message, rev_id=rev_id)
    return sc.path
