"""A leaderboard from battle records (FastChat's battle dicts): plain or style-controlled."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from omnimini.arena.ratings import (BOOTSTRAP_ROUNDS, Battles, Standing, bootstrap_bradley_terry,
                                    bradley_terry, online_elo, standings)
from omnimini.arena.style import style_controlled, style_features


def compute_leaderboard(records: Iterable[dict], *, style: bool = False,
                        rounds: int = BOOTSTRAP_ROUNDS) -> list[Standing]:
    records = list(records)
    battles = Battles.from_records(records)
    if not len(battles):
        return []
    if style:
        point, boot, _ = style_controlled(battles, style_features([r.get("conv_metadata") or {} for r in records]),
                                          rounds)
    else:
        bt = bradley_terry(battles)
        point = [bt[m] for m in battles.models]
        boot = bootstrap_bradley_terry(battles, rounds)
    return standings(battles.models, np.asarray(point), boot, battles.votes(), online_elo(battles))
