"""The `omnimini` command: serve the API, chat in the terminal, list models."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from omnimini.settings import Settings

app = typer.Typer(help="omnimini: a self-hosted small-model service behind the OpenAI API.",
                  no_args_is_help=True, add_completion=False)
console = Console()

_F = Settings.model_fields


def _help(name: str) -> str:
    return _F[name].description or ""


def _settings(**flags: Any) -> Settings:
    """Flags override OMNIMINI_* environment variables, which override defaults."""
    return Settings(**{k: v for k, v in flags.items() if v is not None and v != []})


@app.command()
def serve(
    host: Optional[str] = typer.Option(None, help=_help("host") + " (env OMNIMINI_HOST; default 127.0.0.1)"),
    port: Optional[int] = typer.Option(None, help=_help("port") + " (env OMNIMINI_PORT; default 8000)"),
    data_dir: Optional[Path] = typer.Option(None, help=_help("data_dir") + " (env OMNIMINI_DATA_DIR)"),
    models_file: Optional[Path] = typer.Option(None, help=_help("models_file") + " (env OMNIMINI_MODELS_FILE)"),
    model: list[str] = typer.Option([], "--model", help=_help("models")),
    threads: Optional[int] = typer.Option(None, help=_help("threads") + " (env OMNIMINI_THREADS)"),
    context_size: Optional[int] = typer.Option(None, help=_help("context_size") + " (env OMNIMINI_CONTEXT_SIZE)"),
    parallel: Optional[int] = typer.Option(None, help=_help("parallel") + " (env OMNIMINI_PARALLEL)"),
    queue_size: Optional[int] = typer.Option(None, help=_help("queue_size") + " (env OMNIMINI_QUEUE_SIZE)"),
    prompt_cache: Optional[int] = typer.Option(None, help=_help("prompt_cache") + " (env OMNIMINI_PROMPT_CACHE)"),
    load_invariant: Optional[bool] = typer.Option(None, "--load-invariant/--no-load-invariant",
                                                  help=_help("load_invariant") + " (env OMNIMINI_LOAD_INVARIANT)"),
    preload: list[str] = typer.Option([], "--preload", help=_help("preload")),
    max_request_bytes: Optional[int] = typer.Option(None, help=_help("max_request_bytes")
                                                    + " (env OMNIMINI_MAX_REQUEST_BYTES)"),
    log_level: Optional[str] = typer.Option(None, help=_help("log_level") + " (env OMNIMINI_LOG_LEVEL)"),
    auth: Optional[bool] = typer.Option(None, "--auth/--no-auth", help=_help("auth") + " (env OMNIMINI_AUTH)"),
    database_url: Optional[str] = typer.Option(None, help=_help("database_url") + " (env OMNIMINI_DATABASE_URL)"),
) -> None:
    """Serve the OpenAI API (chat completions, completions, embeddings, models, files, batches)."""
    import uvicorn

    from omnimini.server.app import create_app
    from omnimini.service.runtime import Runtime

    s = _settings(host=host, port=port, data_dir=data_dir, models_file=models_file, models=model,
                  threads=threads, context_size=context_size, preload=preload, log_level=log_level, parallel=parallel,
                  queue_size=queue_size, prompt_cache=prompt_cache, load_invariant=load_invariant,
                  max_request_bytes=max_request_bytes, auth=auth, database_url=database_url)
    from omnimini.server.platform import Platform, is_loopback
    if s.auth is None and not is_loopback(s.host):
        console.print(f"[red]Refusing to serve {s.host} without API keys: pass --auth (create keys with "
                      "`omnimini keys create`) or, to allow anyone who can reach it, --no-auth.[/red]")
        raise typer.Exit(2)
    logging.basicConfig(level=s.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    runtime = Runtime.build(s.catalog(), data_dir=s.data_path, n_threads=s.threads,
                            context_size=s.context_size, parallel=s.parallel,
                            queue_size=s.queue_size, prompt_cache=s.prompt_cache,
                            load_invariant=s.load_invariant)
    console.print(f"[bold]omnimini[/bold] serving {', '.join(runtime.catalog.names())} "
                  f"on http://{s.host}:{s.port}/v1")
    platform = Platform.open(s, auth=bool(s.auth))     # store (migrated), keys, limits, files, batches
    uvicorn.run(create_app(runtime, preload=s.preload, max_request_bytes=s.max_request_bytes, platform=platform),
                host=s.host, port=s.port,
                log_level=s.log_level.lower())


@app.command()
def models(models_file: Optional[Path] = typer.Option(None, help=_help("models_file")),
           model: list[str] = typer.Option([], "--model", help=_help("models"))) -> None:
    """List the catalog: snapshots, aliases, context lengths and prices."""
    from rich.table import Table

    catalog = _settings(models_file=models_file, models=model).catalog()
    table = Table("id", "aliases", "kind", "context", "$/M in", "$/M out", "source", "shuts down")
    for spec in catalog.specs():
        table.add_row(spec.id, ", ".join(spec.aliases), spec.kind, str(spec.context_length),
                      f"{spec.input_price:g}" + ("" if spec.billing_unit == "token" else f" per M {spec.billing_unit}s"),  # issue 9
                      f"{spec.output_price:g}", spec.source, spec.shutdown_date or "")
    console.print(table)


@app.command()
def chat(
    model: str = typer.Option("omnimini-mini", "--model", "-m", help="Model to chat with."),
    system: Optional[str] = typer.Option(None, help="System prompt to start with."),
    base_url: Optional[str] = typer.Option(None, help="Talk to an OpenAI-compatible server at this URL "
                                           "(e.g. http://127.0.0.1:8000/v1) instead of loading the model here."),
    api_key: str = typer.Option("none", envvar="OPENAI_API_KEY", help="API key for --base-url."),
    temperature: Optional[float] = typer.Option(None, help="Sampling temperature."),
    max_tokens: Optional[int] = typer.Option(None, help="Cap on each answer's length in tokens."),
    models_file: Optional[Path] = typer.Option(None, help=_help("models_file")),
    threads: Optional[int] = typer.Option(None, help=_help("threads")),
) -> None:
    """Chat in the terminal; answers stream. Commands: /system TEXT, /reset, /exit."""
    from omnimini.chat_repl import run_repl

    s = _settings(models_file=models_file, threads=threads)
    asyncio.run(run_repl(s, model=model, system=system, base_url=base_url, api_key=api_key,
                         temperature=temperature, max_tokens=max_tokens, console=console))


from omnimini.commands import db as _db  # noqa: E402
app.add_typer(_db.app, name="db")
from omnimini.commands import keys as _keys, usage as _usage  # noqa: E402
app.add_typer(_keys.app, name="keys")
app.add_typer(_usage.app, name="usage")
from omnimini.commands.tokens import app as _tokens_app  # noqa: E402
app.add_typer(_tokens_app, name="tokens")
from omnimini.commands.arena import app as _arena_app  # noqa: E402
app.add_typer(_arena_app, name="arena")
from omnimini.commands.evals import app as _evals_app  # noqa: E402
app.add_typer(_evals_app, name="eval")
from omnimini.commands.voice import app as _voice_app  # noqa: E402
app.add_typer(_voice_app, name="voice")

if __name__ == "__main__":
    app()
