"""`omnimini usage`: the bill from the usage rows: requests, tokens and cost, in total or grouped."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from omnimini.commands.common import DatabaseUrl, DataDir, open_store

app = typer.Typer(help="Usage and cost per key, model or day.", invoke_without_command=True)
console = Console()


@app.callback()
def usage(key: Optional[str] = typer.Option(None, "--key", help="Only this key (id or name)."),
          since: Optional[str] = typer.Option(None, "--since", help="Start: 7d, 12h, 30m, 2026-11-21, or unix seconds."),
          group_by: Optional[str] = typer.Option(None, "--group-by", help="model, day (UTC) or key (default: one total)."),
          as_json: bool = typer.Option(False, "--json", help="Print the JSON that GET /v1/usage returns."),
          data_dir: Optional[Path] = DataDir, database_url: Optional[str] = DatabaseUrl) -> None:
    """Print usage and cost (USD, from the catalog's prices; batch requests at half price)."""
    from omnimini.access.keys import KeyNotFound, Keys
    from omnimini.metering.usage import as_json as to_json
    from omnimini.metering.usage import parse_since, summarize

    store = open_store(data_dir, database_url)
    try:
        key_id = Keys(store).find(key).id if key else None
        since_ts = parse_since(since)
        lines = summarize(store, key_id=key_id, since=since_ts, group_by=group_by)
    except (KeyNotFound, ValueError) as e:
        console.print(f"[red]{e}[/red]")
        raise typer.Exit(2)
    doc = to_json(lines, group_by=group_by, key_id=key_id, since=since_ts)
    if as_json:
        print(json.dumps(doc, indent=2))
        return
    table = Table(group_by or "", "requests", "errors", "prompt", "cached", "completion", "total tokens", "cost $")
    for x in lines:
        table.add_row(x.group or "total", str(x.requests), str(x.errors), str(x.prompt_tokens), str(x.cached_tokens),
                      str(x.completion_tokens), str(x.total_tokens), f"{x.cost:.6f}")
    console.print(table)
    if group_by:
        console.print(f"total cost: ${doc['total_cost']:.6f}")
