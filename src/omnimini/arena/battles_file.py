"""Battle files: our export and FastChat's clean_battle JSON use the same records.

A record: question_id, model_a, model_b, winner (model_a | model_b | tie | tie (bothbad)), judge,
conversation_a, conversation_b, turn, anony, tstamp, and conv_metadata (token and markdown counts,
for style control). A file is a JSON array of records (FastChat) or JSON Lines (one record a line).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from omnimini.arena.ratings import WINNERS
from omnimini.arena.style import conv_metadata
from omnimini.arena.tables import Battle, Vote


class BattlesFileError(ValueError):
    """A battles file that cannot be read as battles; the message says where and why."""


def to_record(battle: Battle, vote: Vote, *, with_status: bool = False) -> dict[str, Any]:
    record = {
        "question_id": battle.id, "model_a": battle.model_a, "model_b": battle.model_b,
        "winner": vote.winner, "judge": vote.voter,
        "conversation_a": battle.conversation_a, "conversation_b": battle.conversation_b,
        "turn": battle.turns, "anony": battle.anonymous, "tstamp": vote.voted_at,
        "conv_metadata": conv_metadata(battle.conversation_a, battle.conversation_b,
                                       battle.tokens_a, battle.tokens_b),
    }
    if with_status:
        record.update(counted=vote.counted, void_reason=vote.void_reason)
    return record


def _check(record: Any, where: str) -> dict[str, Any]:
    if not isinstance(record, dict):
        raise BattlesFileError(f"{where}: expected an object with model_a, model_b and winner, "
                               f"got {type(record).__name__}")
    for key in ("model_a", "model_b", "winner"):
        if key not in record:
            raise BattlesFileError(f"{where}: missing {key!r}")
    for key in ("model_a", "model_b"):
        if not isinstance(record[key], str) or not record[key]:
            raise BattlesFileError(f"{where}: {key!r} must be a non-empty string")
    if record["model_a"] == record["model_b"]:
        raise BattlesFileError(f"{where}: a model cannot battle itself ({record['model_a']!r})")
    if record["winner"] not in WINNERS:
        raise BattlesFileError(f"{where}: winner {record['winner']!r} is not one of {list(WINNERS)}")
    if "anony" in record and not isinstance(record["anony"], bool):
        raise BattlesFileError(f"{where}: 'anony' must be true or false")
    return record


def read_battles_file(path: Path) -> tuple[list[dict[str, Any]], int]:
    """(anonymous battles, number of non-anonymous ones skipped). Raises BattlesFileError."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise BattlesFileError(f"{path}: cannot read: {e}") from e
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise BattlesFileError(f"{path}: not valid JSON: {e}") from e
        records = [_check(r, f"{path}: record {i}") for i, r in enumerate(data)]
    else:
        records = []
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                records.append(_check(json.loads(line), f"{path}: line {n}"))
            except json.JSONDecodeError as e:
                raise BattlesFileError(f"{path}: line {n}: not valid JSON: {e}") from e
        if not records and stripped:
            raise BattlesFileError(f"{path}: no battles found")
    # FastChat's leaderboard rates anonymous battles only (elo_analysis.py keeps anony == True).
    kept = [r for r in records if r.get("anony", True)]
    return kept, len(records) - len(kept)


def write_battles_file(records: list[dict[str, Any]], path: Path, *, lines: bool = False) -> None:
    if lines:
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    else:
        path.write_text(json.dumps(records, ensure_ascii=False, indent=2), encoding="utf-8")
