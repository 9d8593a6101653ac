"""Arena ratings: online Elo, and Bradley-Terry by maximum likelihood with bootstrap intervals.

The definitions are FastChat's (lm-sys/FastChat, fastchat/serve/monitor/rating_systems.py and
elo_analysis.py), with the same parameters; the code is ours:

- online Elo: one pass over the battles in order, K=4, scale 400, base 10, everyone starts at 1000;
  a tie scores half a win for each side.
- Bradley-Terry: P(a beats b) = 1 / (1 + base ** ((R_b - R_a) / scale)), fitted by maximum
  likelihood with a tie counted as half a win and half a loss (FastChat duplicates every battle and
  turns a tie into one win each). Ratings are reported as scale * theta + init, with the mean at
  init (FastChat's optimisers start at zero and never leave the sum-zero plane).
- 95% intervals: the 2.5% and 97.5% quantiles over 100 bootstrap rounds (battles resampled with
  replacement, drawn as FastChat does from a multinomial over the distinct battle outcomes).
- rank = 1 + the number of models whose lower bound is above this model's upper bound.

What we do differently is speed: the likelihood depends on the battles only through the win matrix
(wins and ties per pair of models), so we fit on at most 3 * m * (m - 1) / 2 cells instead of one
row per battle, and we run every bootstrap round at once with a batched Newton solver.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.special import expit, log_expit

# ---- FastChat's parameters (rating_systems.py: compute_elo, compute_bt, compute_bootstrap_bt) ----
ELO_K = 4.0                 # online Elo step size
ELO_SCALE = 400.0           # rating points per factor BASE in the odds
ELO_BASE = 10.0
ELO_INIT = 1000.0           # every model's start, and the mean of Bradley-Terry ratings
BOOTSTRAP_ROUNDS = 100
INTERVAL = (0.025, 0.975)   # quantiles of the bootstrap distribution: a 95% interval
BOOTSTRAP_SEED = 0          # compute_bootstrap_bt seeds numpy's default_rng with 0

# The four verdicts of FastChat's battle files; a tie of either kind is half a win each.
WINNERS = ("model_a", "model_b", "tie", "tie (bothbad)")
_SCORE_A = {"model_a": 1.0, "model_b": 0.0, "tie": 0.5, "tie (bothbad)": 0.5}

# Newton's method on the convex BT likelihood converges in a handful of steps; these bound it.
NEWTON_MAX_STEPS = 100
NEWTON_TOL = 1e-10          # stop when the largest step is below this (natural units)
# When the maximum-likelihood estimate does not exist (some group of models never lost, or never
# won, against the rest: Ford's condition fails, e.g. after one vote), ratings would run off to
# infinity. Only then we add an L2 penalty of this weight, the one FastChat's style-control fit
# uses (compute_style_control reg=0.5), which keeps a lone 1-0 result to about +-190 points.
FALLBACK_L2 = 0.5


@dataclass(frozen=True)
class Battles:
    """Battles as arrays: model indices of side A and B, and side A's score (1, 0.5 or 0)."""

    models: tuple[str, ...]
    a: np.ndarray
    b: np.ndarray
    score_a: np.ndarray

    def __len__(self) -> int:
        return len(self.a)

    @classmethod
    def from_columns(cls, model_a: Sequence[str], model_b: Sequence[str],
                     winner: Sequence[str]) -> "Battles":
        """Vectorised constructor; `winner` holds FastChat's verdicts (see WINNERS)."""
        ma, mb, w = np.asarray(model_a), np.asarray(model_b), np.asarray(winner)
        if not (len(ma) == len(mb) == len(w)):
            raise ValueError("model_a, model_b and winner must have the same length")
        bad = ~np.isin(w, WINNERS)
        if bad.any():
            raise ValueError(f"unknown winner {w[bad][0]!r}; expected one of {list(WINNERS)}")
        if len(ma) and (ma == mb).any():
            raise ValueError(f"a model cannot battle itself: {ma[ma == mb][0]!r}")
        models, idx = np.unique(np.concatenate([ma, mb]), return_inverse=True)
        score = np.where(w == "model_a", 1.0, np.where(w == "model_b", 0.0, 0.5))
        n = len(ma)
        return cls(tuple(str(m) for m in models), idx[:n].astype(np.int64), idx[n:].astype(np.int64), score)

    @classmethod
    def from_records(cls, records: Iterable[dict]) -> "Battles":
        rows = [(r["model_a"], r["model_b"], r["winner"]) for r in records]
        if not rows:
            return cls((), np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0))
        ma, mb, w = zip(*rows)
        return cls.from_columns(ma, mb, w)

    def votes(self) -> np.ndarray:
        """Battles each model took part in."""
        return np.bincount(np.concatenate([self.a, self.b]), minlength=len(self.models))


# ------------------------------------------------------------------------------------ online Elo


def online_elo(battles: Battles, *, k: float = ELO_K, scale: float = ELO_SCALE, base: float = ELO_BASE,
               init: float = ELO_INIT) -> dict[str, float]:
    """FastChat's compute_elo: one sequential pass, in the order given (the order matters)."""
    alpha = math.log(base) / scale
    ratings = [init] * len(battles.models)
    exp = math.exp
    for a, b, s in zip(battles.a.tolist(), battles.b.tolist(), battles.score_a.tolist()):
        update = k * (s - 1.0 / (1.0 + exp(alpha * (ratings[b] - ratings[a]))))
        ratings[a] += update
        ratings[b] -= update
    return dict(zip(battles.models, ratings))


# ------------------------------------------------------------------------------- Bradley-Terry


@dataclass(frozen=True)
class WinMatrix:
    """Distinct outcomes per unordered pair: cell c is (lo[c], hi[c]) with lo's score s[c] in
    {1, 0.5, 0}, observed count[c] times. At most 3 cells per pair of models."""

    m: int
    lo: np.ndarray
    hi: np.ndarray
    s: np.ndarray
    count: np.ndarray

    @classmethod
    def of(cls, battles: Battles) -> "WinMatrix":
        m = len(battles.models)
        swap = battles.a > battles.b
        lo = np.where(swap, battles.b, battles.a)
        hi = np.where(swap, battles.a, battles.b)
        s2 = np.rint(np.where(swap, 1.0 - battles.score_a, battles.score_a) * 2).astype(np.int64)
        cells, count = np.unique((lo * m + hi) * 3 + s2, return_counts=True)
        pair, s2 = np.divmod(cells, 3)
        lo, hi = np.divmod(pair, m)
        return cls(m, lo, hi, s2 / 2.0, count.astype(np.float64))


def _mle_exists(m: int, lo: np.ndarray, hi: np.ndarray, won: np.ndarray, lost: np.ndarray) -> bool:
    """Ford (1957): the BT maximum-likelihood estimate exists iff the graph with an edge i -> j
    whenever i scored against j is strongly connected. won/lost: lo's score and hi's score per cell."""
    if m <= 1:
        return True
    src = np.concatenate([lo[won > 0], hi[lost > 0]])
    dst = np.concatenate([hi[won > 0], lo[lost > 0]])
    graph = coo_matrix((np.ones(len(src)), (src, dst)), shape=(m, m))
    return connected_components(graph, directed=True, connection="strong")[0] == 1


def _fit_bt_batch(wm: WinMatrix, weights: np.ndarray, alpha: float, l2: np.ndarray) -> np.ndarray:
    """Maximise the BT likelihood for R weightings of the same cells at once (weights: R x C).

    Newton's method with step halving on the negative log-likelihood plus l2[r]/2 * |theta|^2.
    theta is in base-`base` units (P = expit(alpha * (theta_lo - theta_hi))) and keeps sum zero.
    Returns R x m.
    """
    R, m = weights.shape[0], wm.m
    theta = np.zeros((R, m))
    if m < 2:
        return theta
    lo, hi, s = wm.lo, wm.hi, wm.s
    base_g, base_h = np.repeat(np.arange(R) * m, len(lo)), np.repeat(np.arange(R) * m * m, len(lo))
    g_lo, g_hi = base_g + np.tile(lo, R), base_g + np.tile(hi, R)
    h_idx = [base_h + np.tile(i * m + j, R) for i, j in ((lo, lo), (hi, hi), (lo, hi), (hi, lo))]
    shift = np.full((m, m), 1.0 / m)    # fills H's null direction (all ratings shifted together)

    def loss(th: np.ndarray) -> np.ndarray:
        d = alpha * (th[:, lo] - th[:, hi])
        nll = -(weights * (s * log_expit(d) + (1 - s) * log_expit(-d))).sum(axis=1)
        return nll + 0.5 * l2 * (th * th).sum(axis=1)

    current = loss(theta)
    for _ in range(NEWTON_MAX_STEPS):
        p = expit(alpha * (theta[:, lo] - theta[:, hi]))
        g = (alpha * weights * (p - s)).ravel()             # d loss / d theta_lo (and minus for hi)
        grad = (np.bincount(g_lo, g, R * m) - np.bincount(g_hi, g, R * m)).reshape(R, m)
        grad += l2[:, None] * theta
        w = (alpha * alpha * weights * p * (1 - p)).ravel()
        hess = (np.bincount(h_idx[0], w, R * m * m) + np.bincount(h_idx[1], w, R * m * m)
                - np.bincount(h_idx[2], w, R * m * m) - np.bincount(h_idx[3], w, R * m * m)).reshape(R, m, m)
        hess += l2[:, None, None] * np.eye(m) + shift
        step = -np.linalg.solve(hess, grad[..., None])[..., 0]
        step -= step.mean(axis=1, keepdims=True)
        t = np.ones(R)
        for _ in range(40):                                 # halve steps that do not lower the loss
            trial = theta + t[:, None] * step
            new = loss(trial)
            worse = new > current + 1e-12 * np.abs(current)
            if not worse.any():
                break
            t = np.where(worse, t / 2, t)
        theta, current = trial, new
        if np.abs(t[:, None] * step).max() < NEWTON_TOL:
            break
    return theta


def _l2_for(wm: WinMatrix, weights: np.ndarray) -> np.ndarray:
    """0 where the MLE exists for that weighting of the cells, FALLBACK_L2 where it does not."""
    out = np.zeros(len(weights))
    for r, w in enumerate(weights):
        won, lost = w * wm.s, w * (1 - wm.s)
        if not _mle_exists(wm.m, wm.lo, wm.hi, won, lost):
            out[r] = FALLBACK_L2
    return out


def _scaled(theta: np.ndarray, scale: float, init: float) -> np.ndarray:
    return theta * scale + init


def bradley_terry(battles: Battles, *, scale: float = ELO_SCALE, base: float = ELO_BASE,
                  init: float = ELO_INIT) -> dict[str, float]:
    """Maximum-likelihood Bradley-Terry ratings on the Elo scale (mean = init)."""
    wm = WinMatrix.of(battles)
    weights = wm.count[None, :]
    theta = _fit_bt_batch(wm, weights, math.log(base), _l2_for(wm, weights))[0]
    return dict(zip(battles.models, _scaled(theta, scale, init).tolist()))


def bootstrap_bradley_terry(battles: Battles, rounds: int = BOOTSTRAP_ROUNDS, *, seed: int = BOOTSTRAP_SEED,
                            scale: float = ELO_SCALE, base: float = ELO_BASE,
                            init: float = ELO_INIT) -> np.ndarray:
    """Ratings refitted on `rounds` resamples of the battles (with replacement): rounds x models.

    Resampling N battles with replacement only changes how often each distinct outcome occurs,
    so a round is a multinomial draw of N over the cells of the win matrix (as FastChat does).
    """
    wm = WinMatrix.of(battles)
    n = int(wm.count.sum())
    if n == 0:
        return np.zeros((rounds, len(battles.models)))
    rng = np.random.default_rng(seed)
    weights = rng.multinomial(n, wm.count / n, size=rounds).astype(np.float64)
    theta = _fit_bt_batch(wm, weights, math.log(base), _l2_for(wm, weights))
    return _scaled(theta, scale, init)


def rank_by_intervals(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    """FastChat's rank: 1 + the number of models whose lower bound is above this one's upper bound."""
    lower, upper = np.asarray(lower), np.asarray(upper)
    return 1 + (lower[None, :] > upper[:, None]).sum(axis=1)


@dataclass(frozen=True)
class Standing:
    model: str
    rating: float           # Bradley-Terry (or style-controlled) rating
    lower: float            # 95% bootstrap interval
    upper: float
    votes: int              # battles the model took part in
    rank: int
    elo: float              # online Elo, for reference

    def as_dict(self) -> dict:
        return {"model": self.model, "rating": self.rating, "lower": self.lower, "upper": self.upper,
                "votes": self.votes, "rank": self.rank, "elo": self.elo}


def standings(model_names: Sequence[str], point: np.ndarray, boot: np.ndarray, votes: np.ndarray,
              elo: dict[str, float]) -> list[Standing]:
    """Rows of a leaderboard, best first: rating, interval, votes and rank per model."""
    if len(model_names) == 0:
        return []
    lower, upper = np.quantile(boot, INTERVAL, axis=0)
    ranks = rank_by_intervals(lower, upper)
    rows = [Standing(m, float(point[i]), float(lower[i]), float(upper[i]), int(votes[i]), int(ranks[i]),
                     float(elo.get(m, ELO_INIT)))
            for i, m in enumerate(model_names)]
    return sorted(rows, key=lambda r: (r.rank, -r.rating, r.model))


def leaderboard(battles: Battles, rounds: int = BOOTSTRAP_ROUNDS, *, seed: int = BOOTSTRAP_SEED) -> list[Standing]:
    """Bradley-Terry ratings with 95% bootstrap intervals, ranks, vote counts and online Elo."""
    point = np.array([bradley_terry(battles)[m] for m in battles.models]) if len(battles) else np.zeros(0)
    boot = bootstrap_bradley_terry(battles, rounds, seed=seed)
    return standings(battles.models, point, boot, battles.votes(), online_elo(battles))
