"""Options shared by the commands that open the store."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from omnimini.settings import Settings

DataDir = typer.Option(None, "--data-dir", help="Data directory (env OMNIMINI_DATA_DIR).")
DatabaseUrl = typer.Option(None, "--database-url", help="Store URL (env OMNIMINI_DATABASE_URL; "
                           "default: SQLite in the data directory).")


def open_store(data_dir: Optional[Path], database_url: Optional[str], *, migrate: bool = True):
    from omnimini.store import Store

    flags = {k: v for k, v in {"data_dir": data_dir, "database_url": database_url}.items() if v is not None}
    return Store.open(Settings(**flags).store_url, migrate=migrate)
