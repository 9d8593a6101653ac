"""Bradley-Terry with 100 bootstrap rounds on 1,000,000 simulated battles among 50 models:
omnimini's win-matrix fit against a straightforward FastChat-style fit, in the same run.

    .venv/bin/python bench/arena_ratings.py [--battles 1000000] [--models 50] [--rounds 100]
                                            [--peer-rounds 100] [--json out.json]

(a) omnimini: `omnimini.arena.ratings` — battles aggregated into the win matrix (at most 3 cells
    per pair of models), one Newton fit for the point ratings and one batched Newton fit for all
    bootstrap rounds, each round a multinomial draw over the cells.
(b) peer: FastChat's compute_mle_elo + get_bootstrap_result (elo_analysis.py) — one row per battle,
    every battle duplicated so that a tie is one win each, a dense design matrix with +-log(10),
    sklearn LogisticRegression(fit_intercept=False, no penalty, tol=1e-6); each bootstrap round
    resamples the battles with replacement and fits again.

Both sides start from the same arrays of model names and verdicts and produce the point ratings and
the 2.5%/97.5% quantiles. The peer's time is measured over --peer-rounds rounds (default: all of
them); if fewer, its total is its point fit plus the mean round time times --rounds, and the output
says so. The script also prints the largest difference between the two sides' point ratings.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time

import numpy as np
from sklearn.linear_model import LogisticRegression

from omnimini.arena.ratings import INTERVAL, Battles, bootstrap_bradley_terry, bradley_terry

WINNERS = np.array(["model_a", "model_b", "tie", "tie (bothbad)"])


def simulate(n: int, m: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    true = rng.normal(1000, 150, m)
    names = np.array([f"model-{i:02d}" for i in range(m)])
    a = rng.integers(0, m, n)
    b = rng.integers(0, m - 1, n)
    b += b >= a
    p = 1 / (1 + 10 ** ((true[b] - true[a]) / 400))
    u = rng.random(n)
    verdict = np.where(u < 0.08, 2, np.where(u < 0.12, 3, np.where(rng.random(n) < p, 0, 1)))
    return names[a], names[b], WINNERS[verdict], true


def ours(model_a, model_b, winner, rounds: int) -> tuple[list[str], np.ndarray, np.ndarray]:
    battles = Battles.from_columns(model_a, model_b, winner)
    point = bradley_terry(battles)
    boot = bootstrap_bradley_terry(battles, rounds)
    return list(battles.models), np.array([point[m] for m in battles.models]), np.quantile(boot, INTERVAL, axis=0)


def peer_fit(a_idx: np.ndarray, b_idx: np.ndarray, winner: np.ndarray, p: int) -> np.ndarray:
    """FastChat's compute_mle_elo on index arrays: 2N rows, ties split into one win each."""
    a_idx, b_idx, winner = (np.concatenate([x, x]) for x in (a_idx, b_idx, winner))
    n = len(a_idx)
    X = np.zeros([n, p])
    X[np.arange(n), a_idx] = +math.log(10)
    X[np.arange(n), b_idx] = -math.log(10)
    Y = np.zeros(n)
    Y[winner == "model_a"] = 1.0
    tie = (winner == "tie") | (winner == "tie (bothbad)")
    tie[n // 2:] = False
    Y[tie] = 1.0
    lr = LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-6)   # FastChat: penalty=None
    lr.fit(X, Y)
    return 400 * lr.coef_[0] + 1000


def peer(model_a, model_b, winner, rounds: int, measured: int, seed: int = 0):
    models = sorted(set(model_a) | set(model_b))
    idx = {m: i for i, m in enumerate(models)}
    a_idx = np.array([idx[m] for m in model_a])
    b_idx = np.array([idx[m] for m in model_b])
    t0 = time.perf_counter()
    point = peer_fit(a_idx, b_idx, winner, len(models))
    t_point = time.perf_counter() - t0
    rng = np.random.default_rng(seed)
    n = len(a_idx)
    boot, times = [], []
    for r in range(measured):
        t = time.perf_counter()
        sample = rng.integers(0, n, n)
        boot.append(peer_fit(a_idx[sample], b_idx[sample], winner[sample], len(models)))
        times.append(time.perf_counter() - t)
        print(f"  peer round {r + 1}/{measured}: {times[-1]:.1f} s", flush=True)
    total = t_point + float(np.mean(times)) * rounds if times else t_point
    return models, point, np.quantile(np.array(boot), INTERVAL, axis=0) if boot else None, total, t_point, times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--battles", type=int, default=1_000_000)
    ap.add_argument("--models", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--peer-rounds", type=int, default=None, help="rounds to measure on the peer (default: --rounds)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    measured = args.rounds if args.peer_rounds is None else min(args.peer_rounds, args.rounds)

    print(f"simulating {args.battles:,} battles among {args.models} models ...", flush=True)
    model_a, model_b, winner, _ = simulate(args.battles, args.models, args.seed)

    t = time.perf_counter()
    names, point, (lower, upper) = ours(model_a, model_b, winner, args.rounds)
    t_ours = time.perf_counter() - t
    print(f"omnimini: {t_ours:.2f} s (point + {args.rounds} bootstrap rounds)", flush=True)

    print(f"peer: point fit + {measured} of {args.rounds} bootstrap rounds ...", flush=True)
    p_names, p_point, p_ci, t_peer, t_point, times = peer(model_a, model_b, winner, args.rounds, measured)
    assert p_names == names
    diff = float(np.abs(point - p_point).max())
    extrapolated = measured < args.rounds
    print()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    print(f"battles {args.battles:,}, models {args.models}, bootstrap rounds {args.rounds}")
    print(f"omnimini (win matrix, batched Newton):     {t_ours:9.2f} s")
    print(f"peer (one row per battle, sklearn LR):      {t_peer:9.2f} s"
          + (f"  (point {t_point:.1f} s + {args.rounds} x mean of {measured} measured rounds "
             f"{np.mean(times):.1f} s)" if extrapolated else ""))
    print(f"speed-up: {t_peer / t_ours:.1f}x")
    print(f"largest difference in point ratings: {diff:.4f} points")
    if p_ci is not None and measured >= 20:
        print(f"mean interval width: ours {np.mean(upper - lower):.2f}, peer {np.mean(p_ci[1] - p_ci[0]):.2f} points")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"battles": args.battles, "models": args.models, "rounds": args.rounds,
                       "peer_rounds_measured": measured, "ours_s": t_ours, "peer_s": t_peer,
                       "peer_point_s": t_point, "peer_round_s": times, "speedup": t_peer / t_ours,
                       "max_point_diff": diff}, f, indent=2)


if __name__ == "__main__":
    main()
