"""Arena ratings: recovery of known strengths, equality with FastChat's algorithms, rank rule, edge cases.

FastChat's algorithms are re-implemented here from their published definitions
(fastchat/serve/monitor/elo_analysis.py compute_elo and compute_mle_elo; rating_systems.py
compute_bt), independently of our code, to check ours against them on the same votes.
"""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.linear_model import LogisticRegression

from omnimini.arena.board import compute_leaderboard
from omnimini.arena.ratings import (INTERVAL, Battles, bootstrap_bradley_terry, bradley_terry, leaderboard,
                                    online_elo, rank_by_intervals)
from omnimini.arena.style import conv_metadata, markdown_counts, style_controlled, style_features

TRUE = {"alpha": 1250.0, "bravo": 1150.0, "charlie": 1080.0, "delta": 1000.0, "echo": 940.0, "foxtrot": 820.0}


def simulate(true: dict[str, float], n: int, seed: int, tie_rate: float = 0.0) -> list[dict]:
    """Votes drawn from the BT model with the given ratings; ties (if any) at random."""
    rng = np.random.default_rng(seed)
    names = list(true)
    r = np.array([true[m] for m in names])
    a = rng.integers(0, len(names), n)
    b = rng.integers(0, len(names) - 1, n)
    b += b >= a
    p = 1 / (1 + 10 ** ((r[b] - r[a]) / 400))
    win = rng.random(n) < p
    tie = rng.random(n) < tie_rate
    both_bad = rng.random(n) < 0.5
    winner = np.where(tie, np.where(both_bad, "tie (bothbad)", "tie"), np.where(win, "model_a", "model_b"))
    return [{"model_a": names[i], "model_b": names[j], "winner": str(w)} for i, j, w in zip(a, b, winner)]


def centred(true: dict[str, float]) -> dict[str, float]:
    mean = sum(true.values()) / len(true)
    return {m: v - mean + 1000 for m, v in true.items()}


# ------------------------------------------------------- FastChat, re-implemented from its definition


def fastchat_compute_elo(battles, K=4, SCALE=400, BASE=10, INIT_RATING=1000):
    rating = defaultdict(lambda: INIT_RATING)
    for b in battles:
        ra, rb = rating[b["model_a"]], rating[b["model_b"]]
        ea = 1 / (1 + BASE ** ((rb - ra) / SCALE))
        eb = 1 / (1 + BASE ** ((ra - rb) / SCALE))
        sa = {"model_a": 1, "model_b": 0, "tie": 0.5, "tie (bothbad)": 0.5}[b["winner"]]
        rating[b["model_a"]] += K * (sa - ea)
        rating[b["model_b"]] += K * (1 - sa - eb)
    return dict(rating)


def fastchat_compute_mle_elo(battles, SCALE=400, BASE=10, INIT_RATING=1000):
    """One row per battle, every battle twice; a tie becomes one A win and one B win."""
    models = sorted({b["model_a"] for b in battles} | {b["model_b"] for b in battles})
    idx = {m: i for i, m in enumerate(models)}
    rows = battles + battles
    n, p = len(rows), len(models)
    X = np.zeros([n, p])
    X[np.arange(n), [idx[b["model_a"]] for b in rows]] = +math.log(BASE)
    X[np.arange(n), [idx[b["model_b"]] for b in rows]] = -math.log(BASE)
    winner = np.array([b["winner"] for b in rows])
    Y = np.zeros(n)
    Y[winner == "model_a"] = 1.0
    tie = (winner == "tie") | (winner == "tie (bothbad)")
    tie[n // 2:] = False
    Y[tie] = 1.0
    # FastChat passes penalty=None; sklearn >= 1.8 spells "no penalty" C=inf
    lr = LogisticRegression(fit_intercept=False, C=np.inf, tol=1e-6)
    lr.fit(X, Y)
    return dict(zip(models, SCALE * lr.coef_[0] + INIT_RATING))


def fastchat_compute_bt(battles, base=10.0, scale=400.0, init_rating=1000, tol=1e-6):
    """rating_systems.py: L-BFGS over the distinct (model_a, model_b, outcome) rows with counts."""
    models = sorted({b["model_a"] for b in battles} | {b["model_b"] for b in battles})
    idx = {m: i for i, m in enumerate(models)}
    sched = np.array([(idx[b["model_a"]], idx[b["model_b"]],
                       {"model_a": 2, "model_b": 0}.get(b["winner"], 1)) for b in battles])
    uniq, weights = np.unique(sched, return_counts=True, axis=0)
    matchups, outcomes, weights = uniq[:, :2], uniq[:, 2] / 2.0, weights.astype(float)
    alpha = math.log(base)

    def loss_and_grad(r):
        probs = expit(alpha * (r[matchups[:, 0]] - r[matchups[:, 1]]))
        loss = -((np.log(probs) * outcomes + np.log(1 - probs) * (1 - outcomes)) * weights).sum()
        g = -alpha * (outcomes - probs) * weights
        grad = np.zeros_like(r)
        np.add.at(grad, matchups[:, 0], g)
        np.add.at(grad, matchups[:, 1], -g)
        return loss, grad

    res = minimize(loss_and_grad, np.zeros(len(models)), jac=True, method="L-BFGS-B",
                   options={"maxiter": 100, "gtol": tol})
    return dict(zip(models, res.x * scale + init_rating))


# ------------------------------------------------------------------------------------------- tests


def test_elo_equals_fastchat_compute_elo():
    votes = simulate(TRUE, 3000, seed=3, tie_rate=0.15)
    ours = online_elo(Battles.from_records(votes))
    theirs = fastchat_compute_elo(votes)
    assert set(ours) == set(theirs)
    for m in ours:
        assert ours[m] == pytest.approx(theirs[m], abs=0.5)
    # order matters for online Elo, and the ratings moved away from the start
    assert max(abs(v - 1000) for v in ours.values()) > 50


def test_bradley_terry_equals_fastchat_mle_and_compute_bt():
    votes = simulate(TRUE, 4000, seed=4, tie_rate=0.2)
    ours = bradley_terry(Battles.from_records(votes))
    lr = fastchat_compute_mle_elo(votes)
    bt = fastchat_compute_bt(votes)
    for m in ours:
        assert ours[m] == pytest.approx(lr[m], abs=0.5), m
        assert ours[m] == pytest.approx(bt[m], abs=0.5), m
    assert sum(ours.values()) / len(ours) == pytest.approx(1000)


def test_ratings_recover_true_strengths_within_intervals():
    votes = simulate(TRUE, 20000, seed=5)
    board = {s.model: s for s in leaderboard(Battles.from_records(votes))}
    truth = centred(TRUE)
    for m, s in board.items():
        assert s.lower <= truth[m] <= s.upper, (m, truth[m], s)
        assert s.lower < s.rating < s.upper
        assert s.upper - s.lower < 60          # 20k votes pin each rating to a few dozen points
    assert [s.model for s in sorted(board.values(), key=lambda s: -s.rating)] == list(TRUE)


def test_bootstrap_intervals_cover_truth_at_about_95_percent():
    # over many small simulated arenas, the 95% intervals contain the truth most of the time
    truth = centred(TRUE)
    inside = total = 0
    for seed in range(40):
        battles = Battles.from_records(simulate(TRUE, 600, seed=100 + seed))
        boot = bootstrap_bradley_terry(battles, seed=seed)
        lower, upper = np.quantile(boot, INTERVAL, axis=0)
        for i, m in enumerate(battles.models):
            inside += lower[i] <= truth[m] <= upper[i]
            total += 1
    assert 0.85 <= inside / total <= 0.995, inside / total


def test_rank_rule_counts_models_clearly_above():
    lower = np.array([1100, 1090, 1000, 800])
    upper = np.array([1200, 1150, 1095, 900])
    # model 2's upper (1095) is below model 0's lower (1100) only; model 3 is below all three
    assert rank_by_intervals(lower, upper).tolist() == [1, 1, 2, 4]


def test_one_vote_gives_finite_ordered_ratings():
    votes = [{"model_a": "x", "model_b": "y", "winner": "model_b"}]
    board = leaderboard(Battles.from_records(votes))
    assert [s.model for s in board] == ["y", "x"]
    assert all(math.isfinite(v) for s in board for v in (s.rating, s.lower, s.upper))
    assert 1000 < board[0].rating < 1300 and board[0].votes == 1


def test_bad_battles_are_refused():
    with pytest.raises(ValueError, match="unknown winner"):
        Battles.from_records([{"model_a": "x", "model_b": "y", "winner": "left"}])
    with pytest.raises(ValueError, match="itself"):
        Battles.from_records([{"model_a": "x", "model_b": "x", "winner": "tie"}])
    assert leaderboard(Battles.from_records([])) == []


def test_markdown_counts_follow_fastchat_patterns():
    text = "# Title\n## Sub\n1. one\n2. two\n- a\n* b\n**bold** and __also__\n```\n# not a header\n- no\n```"
    c = markdown_counts(text, "a")
    assert sum(c["header_count_a"].values()) == 2
    assert c["list_count_a"] == {"ordered": 2, "unordered": 2}
    assert c["bold_count_a"] == {"**": 1, "__": 1}


def test_style_control_separates_length_from_strength():
    # Two equally strong models; voters prefer the longer answer, and "verbose" usually writes more.
    rng = np.random.default_rng(7)
    votes = []
    for _ in range(3000):
        sides = ["plain", "verbose"] if rng.random() < 0.5 else ["verbose", "plain"]
        tokens = {"plain": int(rng.integers(50, 300)), "verbose": int(rng.integers(150, 400))}
        conv = {m: [{"role": "user", "content": "q"}, {"role": "assistant", "content": "x"}] for m in sides}
        longer_a = tokens[sides[0]] > tokens[sides[1]]
        a_wins = rng.random() < (0.75 if longer_a else 0.25)
        votes.append({"model_a": sides[0], "model_b": sides[1], "winner": "model_a" if a_wins else "model_b",
                      "conv_metadata": conv_metadata(conv[sides[0]], conv[sides[1]], tokens[sides[0]],
                                                     tokens[sides[1]])})
    plain = {s.model: s for s in compute_leaderboard(votes)}
    styled = {s.model: s for s in compute_leaderboard(votes, style=True, rounds=20)}
    assert plain["verbose"].rating - plain["plain"].rating > 100     # length wins plain BT
    assert abs(styled["verbose"].rating - styled["plain"].rating) < 40
    _, _, coef = style_controlled(Battles.from_records(votes),
                                  style_features([v["conv_metadata"] for v in votes]), rounds=1)
    assert coef[0] > 0.5                                              # the length coefficient
