"""The layering of ../shared/DESIGN.md, checked on the source: imports point downward only.

A lower layer never imports a higher one (at module level or inside a function, TYPE_CHECKING
imports included: a type is a dependency too). Packages not in DESIGN.md's table get a layer here,
with the reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "omnimini"

# DESIGN.md, "Layers". settings.py and commands/ are not in the table: settings are read by the
# faces and handed down as values; commands/ is the CLI (a face) split into modules.
LAYERS = {
    "protocol": 0,
    "engine": 1, "store": 1, "models": 1,
    "hierarchy": 2, "access": 2, "metering": 2,
    "service": 3,
    "evals": 4, "arena": 4, "voice": 4, "tokens": 4, "batches": 4, "finetune": 4,
    "cli": 5, "chat_repl": 5, "server": 5, "web": 5, "commands": 5, "settings": 5, "__main__": 5,
}


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[0] != "omnimini" or len(parts) < 2:
        return None
    return LAYERS.get(parts[1])


def _imports(path: Path) -> list[tuple[int, str]]:
    rel = path.relative_to(SRC.parent).with_suffix("")
    package = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:          # relative: resolve against this module's package
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
    return out


def _sources() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "migrations" not in p.parts)


def test_every_top_level_module_has_a_layer():
    names = {p.relative_to(SRC).parts[0].removesuffix(".py") for p in _sources()}
    names.discard("__init__")
    assert names <= set(LAYERS), f"give these a layer in LAYERS: {sorted(names - set(LAYERS))}"


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(SRC)))
def test_imports_point_downward(path: Path):
    own = _layer("omnimini." + path.relative_to(SRC).with_suffix("").as_posix().replace("/", "."))
    if own is None:
        return
    upward = [f"line {line}: {mod} (layer {_layer(mod)})" for line, mod in _imports(path)
              if (_layer(mod) or 0) > own]
    assert not upward, f"{path.relative_to(SRC)} is layer {own} but imports upward: {upward}"
