"""`omnimini db`: the store's schema. `upgrade` is what `serve` does at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from omnimini.commands.common import DatabaseUrl, DataDir, open_store

app = typer.Typer(help="The store: migrations (Alembic) and schema checks.", no_args_is_help=True)
console = Console()


@app.command()
def upgrade(data_dir: Optional[Path] = DataDir, database_url: Optional[str] = DatabaseUrl,
            revision: str = typer.Option("head", help="Target revision.")) -> None:
    """Migrate the store to the newest schema (serve does this at start-up)."""
    from omnimini.store.migrate import current
    store = open_store(data_dir, database_url, migrate=False)
    store.migrate(revision)
    console.print(f"{store.url.render_as_string()} at {', '.join(current(store))}")


@app.command()
def current(data_dir: Optional[Path] = DataDir, database_url: Optional[str] = DatabaseUrl) -> None:
    """The revision the store is at."""
    from omnimini.store.migrate import current as cur
    console.print(", ".join(cur(open_store(data_dir, database_url, migrate=False))) or "(empty)")


@app.command()
def heads() -> None:
    """The newest revision(s) in the package; there must be exactly one."""
    from omnimini.store.migrate import heads as h
    hs = h()
    console.print("\n".join(hs))
    if len(hs) != 1:
        console.print(f"[red]{len(hs)} heads: chain your revision's down_revision onto the other head[/red]")
        raise typer.Exit(1)


@app.command()
def revision(message: str = typer.Option(..., "-m", "--message", help="What the revision does."),
             autogenerate: bool = typer.Option(False, help="Fill it from the difference between the tables "
                                               "declared (store/schema.py TABLE_MODULES) and a store "
                                               "migrated to head (review the result!)."),
             data_dir: Optional[Path] = DataDir, database_url: Optional[str] = DatabaseUrl) -> None:
    """Write a new migration file chained on the current head."""
    from omnimini.store.migrate import revision as rev
    store = open_store(data_dir, database_url) if autogenerate else None
    console.print(rev(message, autogenerate=autogenerate, store=store))


@app.command()
def check(data_dir: Optional[Path] = DataDir, database_url: Optional[str] = DatabaseUrl) -> None:
    """Compare the migrated store with the declared tables; exit 1 on a difference."""
    from omnimini.store.schema import differences
    diffs = differences(open_store(data_dir, database_url))
    for d in diffs:
        console.print(repr(d))
    if diffs:
        raise typer.Exit(1)
    console.print("schema in sync")
