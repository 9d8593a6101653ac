"""The report's chart: tokens per character for each corpus and tokenizer, as an SVG (matplotlib)."""

from __future__ import annotations

from pathlib import Path

from omnimini.tokens.compare import CorpusCount
from omnimini.tokens.tokenizers import Tokenizer

# A fixed salt and no date keep the SVG identical between runs on the same data (clean diffs).
SVG_HASH_SALT = "omnimini-tokens"
BAR_INCHES = 0.1                                # height of one bar


def compression_chart(corpora: list[CorpusCount], tokenizers: list[Tokenizer], path: Path) -> Path:
    import matplotlib
    matplotlib.use("Agg")                       # no display; file output only
    import matplotlib.pyplot as plt
    import numpy as np

    matplotlib.rcParams["svg.hashsalt"] = SVG_HASH_SALT
    matplotlib.rcParams["svg.fonttype"] = "none"      # text stays text: smaller, searchable, selectable
    names = [t.name for t in tokenizers]
    y = np.arange(len(corpora))
    height = 0.8 / max(1, len(names))
    fig, ax = plt.subplots(figsize=(9, 1.5 + BAR_INCHES * len(corpora) * max(1, len(names))))
    for i, name in enumerate(names):
        values = [c.per_char(name) for c in corpora]
        ax.barh(y + (i - (len(names) - 1) / 2) * height, values, height, label=tokenizers[i].label)
    ax.set_yticks(y, [c.label for c in corpora])
    ax.invert_yaxis()
    ax.set_xlabel("tokens per character (lower compresses better)")
    ax.set_title("Tokens per character: MGSM's parallel corpus and HumanEval code")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")   # the short Latin-script bars leave it free
    fig.tight_layout()
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)
    return path
