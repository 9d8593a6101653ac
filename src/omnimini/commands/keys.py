"""`omnimini keys`: create, list and revoke API keys (stored hashed; the secret is shown once)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from omnimini.commands.common import DatabaseUrl, DataDir, open_store

app = typer.Typer(help="API keys: create, list, revoke. Serve with --auth to require them.", no_args_is_help=True)
console = Console()


def _keys(data_dir, database_url):
    from omnimini.access.keys import Keys
    return Keys(open_store(data_dir, database_url))


def _when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).strftime("%Y-%m-%d %H:%M") if ts else ""


@app.command()
def create(name: str = typer.Option(..., "--name", help="What the key is for, e.g. app1."),
           rpm: Optional[int] = typer.Option(None, "--rpm", min=1, help="Requests per minute per model."),
           tpm: Optional[int] = typer.Option(None, "--tpm", min=1, help="Tokens per minute per model "
                                             "(prompt + max output reserved at admission)."),
           models: Optional[str] = typer.Option(None, "--models", help="Comma-separated models (aliases or "
                                                "snapshots) the key may use; default: all."),
           admin: bool = typer.Option(False, "--admin", help="May read everyone's usage, files and batches."),
           hierarchy: Optional[str] = typer.Option(None, "--hierarchy", help="Instruction-hierarchy defence policy "
                                                   "for this key's requests: none, prompt, full, screen-annotate, "
                                                   "screen-refuse (default: the model's, else full)."),
           data_dir: Optional[Path] = DataDir, database_url: Optional[str] = DatabaseUrl) -> None:
    """Create a key and print its secret (once: only its hash is stored)."""
    model_list = [m.strip() for m in models.split(",") if m.strip()] if models else None
    if hierarchy is not None:
        from omnimini.hierarchy.policy import check_name
        try:
            check_name(hierarchy)
        except ValueError as e:
            console.print(f"[red]{e}[/red]")
            raise typer.Exit(2)
    created = _keys(data_dir, database_url).create(name, rpm=rpm, tpm=tpm, models=model_list, admin=admin,
                                                   hierarchy=hierarchy)
    console.print(f"created {created.principal.key_id} ({name}); the secret is shown only now:", style="bold")
    print(created.secret)


@app.command("list")
def list_keys(data_dir: Optional[Path] = DataDir, database_url: Optional[str] = DatabaseUrl,
              all_keys: bool = typer.Option(False, "--all", help="Include revoked keys.")) -> None:
    """The keys with their limits (secrets are not stored; the prefix identifies a key)."""
    table = Table("id", "name", "prefix", "rpm", "tpm", "models", "admin", "created (UTC)", "revoked")
    for k in _keys(data_dir, database_url).list(include_revoked=all_keys):
        table.add_row(k.id, k.name, k.prefix + "…", str(k.rpm or "-"), str(k.tpm or "-"), k.models or "all",
                      "yes" if k.admin else "", _when(k.created_at), _when(k.revoked_at))
    console.print(table)


@app.command()
def revoke(key: str = typer.Argument(..., help="Key id, or a name that one live key has."),
           data_dir: Optional[Path] = DataDir, database_url: Optional[str] = DatabaseUrl) -> None:
    """Revoke a key: requests with it get 401 from then on."""
    from omnimini.access.keys import KeyNotFound
    try:
        row = _keys(data_dir, database_url).revoke(key)
    except KeyNotFound as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(1)
    console.print(f"revoked {row.id} ({row.name})")
