"""`omnimini arena`: the leaderboard (from the store or a battles file) and the export of votes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from omnimini.commands.common import DatabaseUrl, DataDir, open_store

app = typer.Typer(help="The arena: leaderboard with confidence intervals, and the export of votes.",
                  no_args_is_help=True)
console = Console()
err = Console(stderr=True)


@app.command()
def leaderboard(
    votes: Optional[Path] = typer.Option(None, "--votes", help="A battles file: `omnimini arena export` output "
                                         "or FastChat's clean_battle JSON (JSON array or JSON Lines). "
                                         "Default: the counted votes in the store."),
    style: bool = typer.Option(False, "--style", help="Style control: discount answer length and markdown."),
    rounds: int = typer.Option(100, min=1, max=10_000, help="Bootstrap rounds for the 95% intervals."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    data_dir: Optional[Path] = DataDir, database_url: Optional[str] = DatabaseUrl,
) -> None:
    """Bradley-Terry ratings with 95% bootstrap intervals and ranks, as LMSYS's Chatbot Arena."""
    from omnimini.arena.battles_file import BattlesFileError, read_battles_file
    from omnimini.arena.board import compute_leaderboard

    skipped = 0
    if votes is not None:
        try:
            records, skipped = read_battles_file(votes)
        except BattlesFileError as e:
            err.print(f"[red]error:[/red] {e}")
            raise typer.Exit(2)
        source = str(votes)
    else:
        from omnimini.arena.service import stored_records
        store = open_store(data_dir, database_url)
        records = stored_records(store)
        source = store.url.render_as_string()
    try:
        rows = compute_leaderboard(records, style=style, rounds=rounds)
    except ValueError as e:
        err.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2)
    if as_json:
        print(json.dumps({"source": source, "votes": len(records), "skipped_not_anonymous": skipped,
                          "style_control": style, "leaderboard": [r.as_dict() for r in rows]}, indent=2))
        return
    table = Table("rank", "model", "rating", "95% interval", "votes", "online Elo",
                  title=f"{len(records)} votes from {source}" + (", style control" if style else ""))
    for r in rows:
        table.add_row(str(r.rank), r.model, f"{r.rating:.0f}", f"{r.lower:.0f} – {r.upper:.0f}", str(r.votes),
                      f"{r.elo:.0f}")
    console.print(table)
    if skipped:
        console.print(f"{skipped} non-anonymous battles skipped (only anonymous votes count).")


@app.command()
def export(
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="File to write (default: standard output)."),
    include_void: bool = typer.Option(False, "--all", help="Also void votes, with counted/void_reason fields."),
    jsonl: bool = typer.Option(False, "--jsonl", help="JSON Lines instead of one JSON array."),
    data_dir: Optional[Path] = DataDir, database_url: Optional[str] = DatabaseUrl,
) -> None:
    """Votes with both conversations, in FastChat's battle format (readable by `arena leaderboard --votes`)."""
    from omnimini.arena.battles_file import write_battles_file
    from omnimini.arena.service import stored_records

    records = stored_records(open_store(data_dir, database_url), include_void=include_void)
    if not include_void:
        for r in records:
            r.pop("counted"), r.pop("void_reason")
    if out is None:
        text = ("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records) if jsonl
                else json.dumps(records, ensure_ascii=False, indent=2) + "\n")
        sys.stdout.write(text)
        return
    write_battles_file(records, out, lines=jsonl)
    err.print(f"{len(records)} battles written to {out}")
