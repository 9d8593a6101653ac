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


@pytest.fixture(scope="module")
def arena_server(tmp_path_factory, gguf_copy):
    tmp = tmp_path_factory.mktemp("arena")
    models_file = tmp / "models.yaml"
    models_file.write_text("models:\n  - id: my-model-2026-01-02\n"
                           f"    path: {gguf_copy}\n    aliases: [my-model]\n    context_length: 2048\n"
                           "    temperature: 0.2\n    top_p: 0.9\n")
    arena_file = tmp / "arena.yaml"
    arena_file.write_text("contestants:\n  - model: omnimini-mini\n  - model: my-model\n    weight: 2\n")
    live = LiveServer(["--models-file", str(models_file), "--preload", "omnimini-mini", "--preload", "my-model"],
                      tmp, env={"OMNIMINI_ARENA_FILE": str(arena_file), "OMNIMINI_ARENA_DAILY_VOTE_CAP": str(CAP),
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
