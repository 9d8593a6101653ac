"""The arena on a live `omnimini serve` with two real models (the embedded SmolLM2 under two names):
battles over HTTP, the rules on real answers, an upstream contestant over real HTTP, and a full
battle played in Debian's Chromium through Playwright.

Loads llama models: run under the shared lock
    flock /tmp/omnimini-llama.lock .venv/bin/python -m pytest tests/test_arena_live.py -x -q
"""

from __future__ import annotations

import asyncio
import json
import shutil

import httpx
import pytest

from conftest import LiveServer
from omnimini.arena.contestants import Contestant, Finished, Piece

MINI, MINE = "omnimini-mini-2026-11-21", "my-model-2026-01-02"
CAP = 6
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# A prompt whose short answers name no model or vendor, so that the vote counts.
PROMPT = "Write one short sentence about the sea."


def arena_args(tmp, gguf_copy) -> tuple[list[str], dict[str, str]]:
    """serve's arguments and environment for an arena of the two models."""
    models_file = tmp / "models.yaml"
    models_file.write_text("models:\n  - id: my-model-2026-01-02\n"
                           f"    path: {gguf_copy}\n    aliases: [my-model]\n    context_length: 2048\n"
                           "    temperature: 0.2\n    top_p: 0.9\n")
    arena_file = tmp / "arena.yaml"
    arena_file.write_text("contestants:\n  - model: omnimini-mini\n  - model: my-model\n    weight: 2\n")
    return (["--models-file", str(models_file), "--preload", "omnimini-mini", "--preload", "my-model"],
            {"OMNIMINI_ARENA_FILE": str(arena_file)})


@pytest.fixture(scope="module")
def arena_server(tmp_path_factory, gguf_copy):
    tmp = tmp_path_factory.mktemp("arena")
    args, env = arena_args(tmp, gguf_copy)
    live = LiveServer(args, tmp, env={**env, "OMNIMINI_ARENA_DAILY_VOTE_CAP": str(CAP),
                                      "OMNIMINI_ARENA_MAX_TOKENS": "32"})
    yield live
    live.stop()


@pytest.fixture
def web(arena_server):
    with httpx.Client(base_url=arena_server.url, timeout=120) as c:     # keeps the voter cookie
        yield c


def play_turn(web: httpx.Client, battle: str, prompt: str) -> tuple[list[dict], str]:
    events, raw = [], ""
    with web.stream("POST", f"/arena/api/battles/{battle}/turns", json={"prompt": prompt}) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            raw += line + "\n"
            if line.startswith("data: ") and line != "data: [DONE]":
                events.append(json.loads(line[6:]))
    return events, raw


def new_battle(web: httpx.Client) -> str:
    r = web.post("/arena/api/battles", json={})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["anonymous"] is True and "model_a" not in body
    return body["id"]


def test_battle_over_http(web):
    battle = new_battle(web)
    assert web.cookies.get("omnimini_voter")
    events, raw = play_turn(web, battle, PROMPT)
    for side in "ab":
        deltas = [e for e in events if e.get("side") == side and e["type"] == "delta"]
        assert len(deltas) > 1 and "".join(d["content"] for d in deltas).strip()     # streamed, not empty
        assert [e["type"] for e in events if e.get("side") == side][-1] == "done"
    assert events[-1] == {"type": "turn_end", "turn": 1}
    for name in ("omnimini", "my-model", MINI, MINE):
        assert name not in raw                                           # anonymous until the vote

    r = web.post(f"/arena/api/battles/{battle}/vote", json={"winner": "model_b"})
    assert r.status_code == 200, r.text
    v = r.json()
    assert {v["model_a"], v["model_b"]} == {MINI, MINE} and v["winner"] == "model_b"
    assert v["counted"], v["void_reason"]

    again = web.post(f"/arena/api/battles/{battle}/vote", json={"winner": "model_a"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_voted"
    after = web.post(f"/arena/api/battles/{battle}/turns", json={"prompt": "more"})
    assert after.status_code == 409 and after.json()["error"]["code"] == "battle_closed"
    unknown = web.post("/arena/api/battles/battle-000/vote", json={"winner": "tie"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "battle_not_found"
    bad = web.post(f"/arena/api/battles/{battle}/vote", json={"winner": "tie", "extra": 1})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "extra"
    stranger = httpx.post(f"{web.base_url}/arena/api/battles/{battle}/vote", json={"winner": "tie"})
    assert stranger.status_code == 403

    board = web.get("/arena/api/leaderboard").json()
    rows = {row["model"]: row for row in board["leaderboard"]}
    assert set(rows) == {MINI, MINE} and board["counted_votes"] >= 1
    winner = v["model_b"]
    assert rows[winner]["rating"] > 1000 and rows[winner]["lower"] <= rows[winner]["rating"] <= rows[winner]["upper"]


def test_multi_turn_keeps_each_sides_history(web, arena_server):
    battle = new_battle(web)
    play_turn(web, battle, "Name a colour.")
    events, _ = play_turn(web, battle, "Now name another one.")
    assert events[-1] == {"type": "turn_end", "turn": 2}
    assert web.post(f"/arena/api/battles/{battle}/vote", json={"winner": "tie"}).status_code == 200
    from omnimini.arena.service import stored_records
    from omnimini.store import Store, default_url
    store = Store.open(default_url(arena_server.log_path.parent / "data"))
    record = next(r for r in stored_records(store, include_void=True) if r["question_id"] == battle)
    store.close()
    for side in ("conversation_a", "conversation_b"):
        assert [t["role"] for t in record[side]] == ["user", "assistant", "user", "assistant"]
        assert record[side][2]["content"] == "Now name another one."
    assert record["conversation_a"][1]["content"] != "" and record["turn"] == 2


def test_identity_word_in_the_conversation_voids_the_vote(web):
    battle = new_battle(web)
    play_turn(web, battle, "In three words, what does OpenAI make?")
    v = web.post(f"/arena/api/battles/{battle}/vote", json={"winner": "model_a"}).json()
    assert v["counted"] is False and v["void_reason"].startswith("identity leak")


def test_daily_vote_cap_over_http(arena_server):
    headers = {"Authorization": "Bearer capped-voter"}
    with httpx.Client(base_url=arena_server.url, timeout=120, headers=headers) as c:
        battles = [new_battle(c) for _ in range(CAP + 1)]
        for b in battles:
            play_turn(c, b, "Say hello.")
        for b in battles[:CAP]:
            assert c.post(f"/arena/api/battles/{b}/vote", json={"winner": "tie"}).status_code == 200
        r = c.post(f"/arena/api/battles/{battles[-1]}/vote", json={"winner": "tie"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0
        assert "cap" in r.json()["error"]["message"]


def test_upstream_contestant_over_openai_compatible_http(arena_server):
    up = Contestant(name="upstream", model="my-model", base_url=arena_server.base_url, api_key="any")

    async def collect():
        return [e async for e in up.stream(None, [{"role": "user", "content": "Say hi."}], 12)]

    events = asyncio.run(collect())
    assert "".join(e.text for e in events if isinstance(e, Piece)).strip()
    assert isinstance(events[-1], Finished) and 0 < events[-1].completion_tokens <= 12
    missing = Contestant(name="x", model="no-such-model", base_url=arena_server.base_url)
    with pytest.raises(RuntimeError, match="404"):
        asyncio.run(missing.stream(None, [{"role": "user", "content": "hi"}], 4).__anext__())


# ------------------------------------------------------------------------------ in the browser

# Counts DOM changes of each answer box, to show that the answers arrive in pieces (streamed).
COUNT_UPDATES = """
window.__updates = {a: 0, b: 0};
document.addEventListener("DOMContentLoaded", () => {
  for (const side of ["a", "b"]) {
    new MutationObserver((ms) => { window.__updates[side] += ms.length; })
      .observe(document.getElementById("log-" + side), {subtree: true, childList: true, characterData: true});
  }
});
"""


@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian's chromium is not installed (make test installs it)")
def test_full_battle_in_the_browser(arena_server):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.add_init_script(COUNT_UPDATES)
        page.goto(arena_server.url + "/arena")
        expect(page.locator("#vote-a")).to_be_disabled()
        page.fill("#prompt", PROMPT)
        page.click("#send")
        for side in "ab":
            answer = page.locator(f"#log-{side} .msg.assistant")
            expect(answer).not_to_have_class("msg assistant streaming", timeout=60_000)
            assert answer.inner_text().strip()
            assert page.locator(f"#log-{side} .msg.user").inner_text() == PROMPT
        updates = page.evaluate("window.__updates")
        assert updates["a"] > 3 and updates["b"] > 3, updates          # many pieces, not one block
        assert page.inner_text("#reveal-a") == "" and page.inner_text("#reveal-b") == ""

        expect(page.locator("#vote-a")).to_be_enabled()
        page.click("#vote-a")
        expect(page.locator("#reveal-a")).not_to_be_empty()
        revealed = {page.inner_text("#reveal-a"), page.inner_text("#reveal-b")}
        assert revealed == {MINI, MINE}
        expect(page.locator("#status")).to_contain_text("Your vote counts")
        winner = page.inner_text("#reveal-a")
        expect(page.locator("#prompt")).to_be_disabled()

        page.click("#new-round")
        expect(page.locator("#reveal-a")).to_be_empty()
        expect(page.locator("#prompt")).to_be_enabled()

        page.goto(arena_server.url + "/arena/leaderboard")
        row = page.locator(f'#board tbody tr[data-model="{winner}"]')
        expect(row).to_be_visible()
        votes = int(row.locator("td").nth(4).inner_text())
        assert votes >= 1
        assert page.locator("#board tbody tr").count() == 2
        assert page.locator("#chart svg line.interval").count() == 2
        expect(page.locator("#summary")).to_contain_text("counted votes")

        page.goto(arena_server.url + "/playground")
        page.select_option("#model", "my-model")
        page.fill("#prompt", "Say hello.")
        page.click("#send")
        reply = page.locator("#log .msg.assistant")
        expect(reply).not_to_have_class("msg assistant streaming", timeout=60_000)
        assert reply.inner_text().strip()
        expect(page.locator("#served-by")).to_have_text(MINE)
        browser.close()


# ------------------------------------------------------------------------------ with --auth

AUTH_CAP = 1                 # votes per key and day on the --auth server
AUTH_KEYS = {"alice": {}, "bob": {}, "limited": {"rpm": 1}, "browser": {}}


@pytest.fixture(scope="module")
def auth_arena(tmp_path_factory, gguf_copy):
    from omnimini.access.keys import Keys
    from omnimini.store import Store, default_url

    tmp = tmp_path_factory.mktemp("arena-auth")
    store = Store.open(default_url(tmp / "data"))
    keys = Keys(store)
    secrets = {name: keys.create(name, **opts).secret for name, opts in AUTH_KEYS.items()}
    ids = {name: keys.find(name).id for name in AUTH_KEYS}
    args, env = arena_args(tmp, gguf_copy)
    live = LiveServer([*args, "--auth"], tmp, env={**env, "OMNIMINI_ARENA_DAILY_VOTE_CAP": str(AUTH_CAP),
                                                   "OMNIMINI_ARENA_MAX_TOKENS": "8"})
    yield {"server": live, "store": store, "keys": secrets, "ids": ids}
    live.stop()
    store.close()


def keyed(auth_arena, name: str) -> httpx.Client:
    return httpx.Client(base_url=auth_arena["server"].url, timeout=120,
                        headers={"Authorization": f"Bearer {auth_arena['keys'][name]}"})


def usage_by_model(c: httpx.Client) -> dict[str, dict]:
    r = c.get("/v1/usage", params={"group_by": "model"})
    assert r.status_code == 200, r.text
    return {line["group"]: line for line in r.json()["data"]}


def test_arena_api_needs_a_key_with_auth(auth_arena):
    url = auth_arena["server"].url
    calls = [("GET", "/arena/api/contestants", None), ("GET", "/arena/api/leaderboard", None),
             ("GET", "/arena/api/chat-models", None), ("POST", "/arena/api/battles", {}),
             ("POST", "/arena/api/battles/battle-0/turns", {"prompt": "hi"}),
             ("POST", "/arena/api/battles/battle-0/vote", {"winner": "tie"})]
    for method, path, body in calls:
        for headers, says in (({}, "didn't provide an API key"),
                              ({"Authorization": "Bearer sk-omni-not-a-real-key"}, "Incorrect API key"),
                              ({"Cookie": "omnimini_voter=0123456789abcdef"}, "didn't provide an API key")):
            r = httpx.request(method, url + path, json=body, headers=headers)
            assert r.status_code == 401, (path, r.text)
            error = r.json()["error"]
            assert error["code"] == "invalid_api_key" and says in error["message"], (path, error)
            assert r.headers["www-authenticate"].startswith("Bearer") and "set-cookie" not in r.headers
    page = httpx.get(url + "/arena")              # the pages load, and ask for the key when the API says 401
    assert page.status_code == 200 and "set-cookie" not in page.headers
    with keyed(auth_arena, "alice") as c:
        assert {x["name"] for x in c.get("/arena/api/contestants").json()["contestants"]} == {MINI, MINE}


def test_arena_turns_are_metered_and_votes_belong_to_the_key(auth_arena):
    from sqlalchemy import select

    from omnimini.arena.tables import Battle, Vote

    store, ids = auth_arena["store"], auth_arena["ids"]
    # alice's key with somebody's voter cookie: the key is the voter, the cookie is ignored
    with keyed(auth_arena, "alice") as alice, keyed(auth_arena, "bob") as bob:
        alice.cookies.set("omnimini_voter", "0123456789abcdef0123456789abcdef")
        battle = new_battle(alice)
        events, _ = play_turn(alice, battle, PROMPT)
        assert events[-1] == {"type": "turn_end", "turn": 1}

        # one usage row per answering snapshot, under alice's key, with the tokens of the answers
        used = usage_by_model(alice)
        assert set(used) == {MINI, MINE}
        for line in used.values():
            assert line["requests"] == 1 and line["errors"] == 0
            assert line["prompt_tokens"] > 0 and 0 < line["completion_tokens"] <= 8
        assert usage_by_model(bob) == {}                                  # not bob's

        stranger = bob.post(f"/arena/api/battles/{battle}/vote", json={"winner": "tie"})
        assert stranger.status_code == 403 and stranger.json()["error"]["code"] == "battle_not_yours"
        v = alice.post(f"/arena/api/battles/{battle}/vote", json={"winner": "model_a"})
        assert v.status_code == 200, v.text
        v = v.json()
        with store.read() as s:
            row = s.get(Battle, battle)
            assert used[v["model_a"]]["completion_tokens"] == row.tokens_a
            assert used[v["model_b"]]["completion_tokens"] == row.tokens_b
            assert row.voter == s.scalar(select(Vote.voter).where(Vote.battle_id == battle)) == \
                "key-" + ids["alice"]

        # the daily cap counts per key: alice's is spent, bob's is not
        again = new_battle(alice)
        play_turn(alice, again, "Say hello.")
        capped = alice.post(f"/arena/api/battles/{again}/vote", json={"winner": "tie"})
        assert capped.status_code == 429 and "cap" in capped.json()["error"]["message"]
        theirs = new_battle(bob)
        play_turn(bob, theirs, "Say hello.")
        assert bob.post(f"/arena/api/battles/{theirs}/vote", json={"winner": "tie"}).status_code == 200
        assert {line["requests"] for line in usage_by_model(alice).values()} == {2}
        assert {line["requests"] for line in usage_by_model(bob).values()} == {1}


def test_arena_turns_respect_the_keys_rate_limit(auth_arena):
    with keyed(auth_arena, "limited") as c:                 # RPM 1 per snapshot
        first = new_battle(c)
        play_turn(c, first, "Say hello.")
        second = new_battle(c)
        for _ in range(2):                                   # a refusal leaves the battle free (not 409)
            r = c.post(f"/arena/api/battles/{second}/turns", json={"prompt": "Say hello."})
            assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_exceeded", r.text
            assert int(r.headers["retry-after"]) >= 1
            for name in ("omnimini", "my-model", MINI, MINE):
                assert name not in r.text                    # the battle stays blind
        used = usage_by_model(c)            # 2 answers, then 2 refusals (billed nothing, counted as errors)
        assert sum(x["requests"] for x in used.values()) == 4 and sum(x["errors"] for x in used.values()) == 2
        assert sum(x["completion_tokens"] for x in used.values()) > 0


@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian's chromium is not installed (make test installs it)")
def test_the_pages_ask_for_the_key_once(auth_arena):
    from playwright.sync_api import expect, sync_playwright

    url, key = auth_arena["server"].url, auth_arena["keys"]["browser"]
    asked = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.on("dialog", lambda d: (asked.append(d.message), d.accept(key)))
        page.goto(url + "/arena")
        page.fill("#prompt", PROMPT)
        page.click("#send")
        for side in "ab":
            expect(page.locator(f"#log-{side} .msg.assistant")).not_to_have_class("msg assistant streaming",
                                                                                timeout=60_000)
        page.click("#vote-tie")
        expect(page.locator("#reveal-a")).not_to_be_empty()
        page.goto(url + "/arena/leaderboard")
        expect(page.locator("#summary")).to_contain_text("counted votes")
        page.goto(url + "/playground")
        expect(page.locator("#api-key")).to_have_value(key)
        expect(page.locator("#model option").first).to_be_attached()
        browser.close()
    assert len(asked) == 1 and "API key" in asked[0]
