"""Style control: Bradley-Terry with answer length and markdown counts as extra features.

FastChat's definition (fastchat/serve/monitor/rating_systems.py: preprocess_for_style,
fit_contextual_bt; add_markdown_info.py: count_markdown_elements), our code:

- per battle and side: assistant tokens, markdown headers, list items and bold spans (code blocks
  removed first);
- feature = (a - b) / (a + b + 1) for each, standardised over the battles;
- logit P(A wins) = alpha * (theta_a - theta_b) + features . beta, fitted by L-BFGS on one row per
  battle with an L2 penalty reg/2 * |params|^2 (reg = 0.5), ties as half a win;
- 100 bootstrap rounds over the battles for the intervals.

The ratings then say how models compare once a longer or more formatted answer no longer helps.
"""

from __future__ import annotations

import math
import re
from typing import Any, Sequence

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from omnimini.arena.ratings import (BOOTSTRAP_ROUNDS, BOOTSTRAP_SEED, ELO_BASE, ELO_INIT, ELO_SCALE,
                                    Battles)

# FastChat STYLE_CONTROL_ELEMENTS_V1, side suffixes _a/_b; dict values are summed (h1..h6 etc.).
STYLE_ELEMENTS = ("sum_assistant_{}_tokens", "header_count_{}", "list_count_{}", "bold_count_{}")
STYLE_REG = 0.5             # fit_contextual_bt's default
STYLE_TOL = 1e-6            # L-BFGS gtol, as FastChat
STYLE_MAX_ITER = 100

# count_markdown_elements' patterns, applied after removing ``` fenced blocks.
CODE_BLOCK = re.compile(r"```([^`]*)```")
HEADERS = {f"h{n}": re.compile(rf"^#{{{n}}}\s", re.MULTILINE) for n in range(1, 7)}
ORDERED_ITEM = re.compile(r"^\s*\d+\.\s", re.MULTILINE)
UNORDERED_ITEM = re.compile(r"^\s*[-*+]\s", re.MULTILINE)
BOLD = {"**": re.compile(r"\*\*[^*\n]+\*\*"), "__": re.compile(r"__[^_\n]+__")}


def markdown_counts(text: str, side: str) -> dict[str, dict[str, int]]:
    text = CODE_BLOCK.sub("", text)
    return {
        f"header_count_{side}": {k: len(p.findall(text)) for k, p in HEADERS.items()},
        f"list_count_{side}": {"ordered": len(ORDERED_ITEM.findall(text)),
                               "unordered": len(UNORDERED_ITEM.findall(text))},
        f"bold_count_{side}": {k: len(p.findall(text)) for k, p in BOLD.items()},
    }


def conv_metadata(conversation_a: list[dict], conversation_b: list[dict], tokens_a: int,
                  tokens_b: int) -> dict[str, Any]:
    """FastChat's conv_metadata for one battle: token sums and markdown counts per side."""
    out: dict[str, Any] = {"sum_assistant_a_tokens": int(tokens_a), "sum_assistant_b_tokens": int(tokens_b)}
    for side, conv in (("a", conversation_a), ("b", conversation_b)):
        text = "\n".join(str(t.get("content") or "") for t in conv if t.get("role") == "assistant")
        out.update(markdown_counts(text, side))
    return out


def _value(meta: dict[str, Any], key: str) -> float:
    v = meta.get(key)
    if v is None:
        raise ValueError(f"conv_metadata lacks {key!r}, which style control needs")
    return float(sum(v.values()) if isinstance(v, dict) else v)


def style_features(metadata: Sequence[dict[str, Any]]) -> np.ndarray:
    """N x 4 standardised features (a - b) / (a + b + 1) from FastChat-shaped conv_metadata."""
    a = np.array([[_value(m, e.format("a")) for e in STYLE_ELEMENTS] for m in metadata]).reshape(-1, 4)
    b = np.array([[_value(m, e.format("b")) for e in STYLE_ELEMENTS] for m in metadata]).reshape(-1, 4)
    diff = (a - b) / (a + b + 1.0)
    std = diff.std(axis=0)
    return (diff - diff.mean(axis=0)) / np.where(std > 0, std, 1.0)


def _fit(battles: Battles, features: np.ndarray, weights: np.ndarray, alpha: float) -> np.ndarray:
    m, k = len(battles.models), features.shape[1]
    a, b, y = battles.a, battles.b, battles.score_a

    def loss_and_grad(params: np.ndarray) -> tuple[float, np.ndarray]:
        theta, beta = params[:m], params[m:]
        z = alpha * (theta[a] - theta[b]) + features @ beta
        loss = -(weights * (y * log_expit(z) + (1 - y) * log_expit(-z))).sum()
        loss += 0.5 * STYLE_REG * params @ params
        err = weights * (expit(z) - y)
        grad = STYLE_REG * params
        grad[:m] += alpha * (np.bincount(a, err, m) - np.bincount(b, err, m))
        grad[m:] += features.T @ err
        return loss, grad

    result = minimize(loss_and_grad, np.zeros(m + k), jac=True, method="L-BFGS-B",
                      options={"maxiter": STYLE_MAX_ITER, "gtol": STYLE_TOL})
    return result.x


def style_controlled(battles: Battles, features: np.ndarray, rounds: int = BOOTSTRAP_ROUNDS, *,
                     seed: int = BOOTSTRAP_SEED, scale: float = ELO_SCALE, base: float = ELO_BASE,
                     init: float = ELO_INIT) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(point ratings per model, bootstrap ratings rounds x models, style coefficients)."""
    n, m = len(battles), len(battles.models)
    if features.shape != (n, len(STYLE_ELEMENTS)):
        raise ValueError(f"expected {n} x {len(STYLE_ELEMENTS)} style features, got {features.shape}")
    alpha = math.log(base)
    params = _fit(battles, features, np.ones(n), alpha)
    rng = np.random.default_rng(seed)
    boot = np.array([_fit(battles, features, np.bincount(rng.integers(0, n, n), minlength=n).astype(float),
                          alpha)[:m] for _ in range(rounds)]).reshape(rounds, m)
    centre = lambda t: (t - t.mean(axis=-1, keepdims=True)) * scale + init   # noqa: E731
    return centre(params[:m]), centre(boot), params[m:]
