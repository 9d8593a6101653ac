"""Arena votes on a real SQLite store, without a model: which votes count, and bad input.

Battles get their conversations through the arena's own recording path (`_record_turn`, what a
finished turn calls); the streaming turn itself is exercised on the live server in
test_arena_live.py. Also: the CLI's export and leaderboard, on the store and on battle files.
"""

from __future__ import annotations

import json
import random

import pytest
from typer.testing import CliRunner

from omnimini.arena.contestants import Contestant, draw_pair
from omnimini.arena.service import Arena, stored_records
from omnimini.arena.tables import Vote
from omnimini.cli import app as cli
from omnimini.protocol.errors import APIError, NotFound, RateLimitExceeded
from omnimini.store import Store, default_url
from sqlalchemy import func, select

VOTER = "cookie-abc"


class Clock:
    def __init__(self, t: float = 1_800_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def data_dir(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def arena(data_dir):
    store = Store.open(default_url(data_dir))
    yield Arena(store, chat=None, contestants=[Contestant("alpha-1", "alpha-1"), Contestant("beta-2", "beta-2")],
                daily_vote_cap=3, rng=random.Random(1), clock=Clock())
    store.close()


def played(arena: Arena, answers=("Paris is the capital.", "It is Paris."), errors=(None, None),
           prompt="What is the capital of France?", voter=VOTER) -> str:
    battle = arena.create_battle(voter)["id"]
    arena._record_turn(battle, prompt, {s: {"text": t, "tokens": len(t.split()), "error": e}
                                        for s, t, e in zip("ab", answers, errors)})
    return battle


def votes_in_store(arena: Arena) -> int:
    with arena.store.read() as s:
        return s.scalar(select(func.count(Vote.id)))


def test_a_clean_anonymous_vote_counts_and_reveals(arena):
    battle = played(arena)
    v = arena.vote(battle, VOTER, "model_a")
    assert v["counted"] and v["void_reason"] is None
    assert {v["model_a"], v["model_b"]} == {"alpha-1", "beta-2"}
    [record] = stored_records(arena.store)
    assert record["winner"] == "model_a" and record["judge"] == VOTER and record["anony"] is True
    assert record["conversation_a"][0] == {"role": "user", "content": "What is the capital of France?"}
    assert record["conversation_b"][1]["content"] == "It is Paris."
    board = arena.leaderboard()
    assert board["counted_votes"] == 1
    assert board["leaderboard"][0]["model"] == v["model_a"]


@pytest.mark.parametrize("answers, errors, prompt, reason", [
    (("I am ChatGPT, made by OpenAI.", "Hi"), (None, None), "Hello", "identity leak"),
    (("Hello", "Hi"), (None, None), "Are you Claude?", "identity leak"),
    (("As a SmolLM model...", "Hi"), (None, None), "Hello", "identity leak"),
    (("I'm alpha-1, nice to meet you", "Hi"), (None, None), "Hello", "identity leak"),   # a contestant's name
    (("Hello", "   "), (None, None), "Hello", "empty answer from model B"),
    (("Hello", ""), (None, "context_length_exceeded"), "Hello", "failed answer from model B"),
])
def test_votes_that_do_not_count(arena, answers, errors, prompt, reason):
    battle = played(arena, answers, errors, prompt)
    v = arena.vote(battle, VOTER, "tie")
    assert not v["counted"] and reason in v["void_reason"]
    assert stored_records(arena.store) == []                           # not rated
    assert len(stored_records(arena.store, include_void=True)) == 1    # but kept
    assert arena.leaderboard()["void_votes"] == 1


def test_words_inside_other_words_do_not_void(arena):
    battle = played(arena, ("Napalm was bombarded in the story.", "The palms swayed."), prompt="Tell a story")
    v = arena.vote(battle, VOTER, "model_b")
    assert v["void_reason"] == "identity leak: the conversation names 'palm'"   # "palms" starts with palm
    battle = played(arena, ("Napalm and a bombardment.", "Fine."), prompt="Tell a story")
    assert arena.vote(battle, VOTER, "model_b")["counted"]


def test_named_battles_never_count(arena):
    battle = arena.create_battle(VOTER, ["alpha-1", "beta-2"])
    assert battle["anonymous"] is False and battle["model_a"] == "alpha-1"
    arena._record_turn(battle["id"], "Hi", {s: {"text": "Hello", "tokens": 1, "error": None} for s in "ab"})
    assert arena.vote(battle["id"], VOTER, "model_a")["void_reason"].startswith("not anonymous")


def test_bad_votes_are_refused_and_nothing_is_recorded_twice(arena):
    with pytest.raises(NotFound) as e:
        arena.vote("battle-nope", VOTER, "model_a")
    assert e.value.status == 404 and e.value.code == "battle_not_found"

    battle = played(arena)
    with pytest.raises(APIError) as e:
        arena.vote(battle, VOTER, "left")
    assert e.value.status == 400 and e.value.param == "winner"
    with pytest.raises(APIError) as e:
        arena.vote(battle, "cookie-someone-else", "model_a")
    assert e.value.status == 403

    arena.vote(battle, VOTER, "model_b")
    with pytest.raises(APIError) as e:
        arena.vote(battle, VOTER, "model_a")
    assert e.value.status == 409 and e.value.code == "already_voted"
    assert votes_in_store(arena) == 1
    assert stored_records(arena.store)[0]["winner"] == "model_b"       # the first vote stands

    unplayed = arena.create_battle(VOTER)["id"]
    with pytest.raises(APIError) as e:
        arena.vote(unplayed, VOTER, "tie")
    assert e.value.status == 400 and e.value.code == "no_answers"


def test_daily_cap_per_voter(arena):
    for _ in range(3):
        arena.vote(played(arena), VOTER, "tie")
    over = played(arena)
    with pytest.raises(RateLimitExceeded) as e:
        arena.vote(over, VOTER, "tie")
    assert e.value.status == 429 and int(e.value.headers["retry-after"]) > 0
    assert votes_in_store(arena) == 3
    arena.vote(played(arena, voter="cookie-other"), "cookie-other", "tie")   # another voter is not capped
    arena.clock.t += 86400                                                    # the next day
    assert arena.vote(over, VOTER, "tie")["counted"]
    assert votes_in_store(arena) == 5


def test_pairs_are_weighted_never_self_and_both_sides():
    cs = [Contestant("a", "a", weight=4.0), Contestant("b", "b"), Contestant("c", "c"),
          Contestant("a-alias", "a")]                 # the same underlying model under another name
    rng = random.Random(0)
    pairs = [draw_pair(cs, rng) for _ in range(3000)]
    assert all(x.model != y.model for x, y in pairs)
    left = sum(x.name == "a" for x, _ in pairs)
    right = sum(y.name == "a" for _, y in pairs)
    assert abs(left - right) < 200                     # sides shuffled
    share_a = (left + right) / len(pairs)
    share_b = sum("b" in (x.name, y.name) for x, y in pairs) / len(pairs)
    assert share_a > 0.85 and share_b < 0.6            # weight 4 of 6 is in nearly every battle
    with pytest.raises(ValueError):
        draw_pair([Contestant("a", "a"), Contestant("a2", "a")], rng)


# ----------------------------------------------------------------------------------- CLI


def test_cli_export_and_leaderboard_round_trip(arena, data_dir, tmp_path):
    winners = ["model_a", "model_b", "model_a", "tie"]
    arena.daily_vote_cap = 10
    for w in winners:
        arena.vote(played(arena), VOTER, w)
    arena.vote(played(arena, ("I am Qwen.", "Hi")), VOTER, "model_a")     # void
    runner = CliRunner()
    out = tmp_path / "battles.json"
    r = runner.invoke(cli, ["arena", "export", "--data-dir", str(data_dir), "--out", str(out)])
    assert r.exit_code == 0, r.output
    exported = json.loads(out.read_text())
    assert [b["winner"] for b in exported] == winners
    assert {"conversation_a", "conversation_b", "judge", "tstamp", "conv_metadata"} <= set(exported[0])

    from_store = runner.invoke(cli, ["arena", "leaderboard", "--data-dir", str(data_dir), "--json"])
    from_file = runner.invoke(cli, ["arena", "leaderboard", "--votes", str(out), "--json"])
    assert from_store.exit_code == 0 and from_file.exit_code == 0, from_store.output + from_file.output
    a, b = json.loads(from_store.stdout), json.loads(from_file.stdout)
    assert a["leaderboard"] == b["leaderboard"] and a["votes"] == 4
    assert sum(row["votes"] for row in a["leaderboard"]) == 8

    r = runner.invoke(cli, ["arena", "export", "--data-dir", str(data_dir), "--all", "--jsonl"])
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(lines) == 5 and lines[-1]["counted"] is False

    styled = runner.invoke(cli, ["arena", "leaderboard", "--votes", str(out), "--style", "--rounds", "5"])
    assert styled.exit_code == 0, styled.output


def test_cli_reads_fastchat_battle_json(tmp_path):
    battles = []
    for i in range(60):
        battles.append({"model_a": "vicuna-13b" if i % 2 else "koala-13b",
                        "model_b": "koala-13b" if i % 2 else "vicuna-13b",
                        "winner": ["model_a", "model_b", "tie", "tie (bothbad)"][i % 4 if i % 3 else 0],
                        "judge": f"arena_user_{i}", "turn": 1, "anony": i % 10 != 0, "language": "English",
                        "tstamp": 1_700_000_000 + i})
    f = tmp_path / "clean_battle_20240101.json"
    f.write_text(json.dumps(battles))
    r = CliRunner().invoke(cli, ["arena", "leaderboard", "--votes", str(f), "--json"])
    assert r.exit_code == 0, r.output
    body = json.loads(r.stdout)
    assert body["votes"] == 54 and body["skipped_not_anonymous"] == 6
    assert {row["model"] for row in body["leaderboard"]} == {"vicuna-13b", "koala-13b"}


@pytest.mark.parametrize("content, message", [
    ('[{"model_a": "x", "model_b": "y"}]', "record 0: missing 'winner'"),
    ('[{"model_a": "x", "model_b": "y", "winner": "left"}]', "winner 'left' is not one of"),
    ('[{"model_a": "x", "model_b": "x", "winner": "tie"}]', "cannot battle itself"),
    ('[{"model_a": "x", "model_b": "y", "winner": "tie"}', "not valid JSON"),
    ('{"model_a": "x", "model_b": "y", "winner": "tie"}\n{"model_a": 3}\n', "line 2"),
    ('[1, 2]', "expected an object"),
])
def test_cli_malformed_battles_file_is_a_clear_error(tmp_path, content, message):
    f = tmp_path / "bad.json"
    f.write_text(content)
    r = CliRunner().invoke(cli, ["arena", "leaderboard", "--votes", str(f)])
    assert r.exit_code == 2
    assert message in " ".join(r.output.split())
    assert "Traceback" not in r.output


def test_metered_request_counts_in_flight_limits_and_bills(tmp_path):
    """What an arena side goes through with a platform (server.access.MeteredRequest): the in-flight
    count the batch worker waits on, the key's RPM through the service's real admit/report hooks,
    and one usage row per request, also for the refused one; finishing twice changes nothing."""
    import asyncio

    from omnimini.access.context import admit, opened, report
    from omnimini.metering.usage import summarize
    from omnimini.models.catalog import embedded_specs
    from omnimini.protocol.common import Usage
    from omnimini.server.access import MeteredRequest
    from omnimini.server.platform import Platform
    from omnimini.settings import Settings

    platform = Platform.open(Settings(data_dir=tmp_path / "data", database_url=None), auth=True)
    who = platform.keys.verify(platform.keys.create("arena", rpm=1).secret)
    spec = next(s for s in embedded_specs() if s.kind == "chat")

    async def two_sides():
        first, second = (MeteredRequest(platform, who, "/arena/api/battles/{battle_id}/turns") for _ in "ab")
        assert platform.inflight == 2
        with opened(first.ctx):
            await admit(spec, 5, 10)
            report(Usage.of(5, 3))
        with opened(second.ctx), pytest.raises(RateLimitExceeded):
            await admit(spec, 5, 10)                  # RPM 1: the second request of the minute
        await first.finish(200)
        first.finish_now(200)
        assert platform.inflight == 1
        second.finish_now(200)                        # a refused request is billed as a 429
        await second.finish(200)
        assert platform.inflight == 0

    asyncio.run(two_sides())
    [line] = summarize(platform.store, key_id=who.key_id)
    assert (line.requests, line.errors, line.prompt_tokens, line.completion_tokens) == (2, 1, 5, 3)
    assert line.cost == pytest.approx(spec.cost(5, 3))
    platform.store.close()
