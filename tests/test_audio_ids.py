"""Audio reply ids in the store: an id from a spoken chat reply can be sent back after the server
restarts (as OpenAI's multi-turn audio conversations do), until it expires; expired rows are purged.

The restart test loads the chat model: run under the shared lock
    flock /tmp/omnimini-llama.lock .venv/bin/python -m pytest tests/test_audio_ids.py -x -q
"""

from __future__ import annotations

import time

import openai
import pytest
from sqlalchemy import func, select

from conftest import LiveServer
from omnimini.service.audio_ids import AudioTranscript, load, save
from omnimini.store import Store, default_url

PROMPT = "Say hello."


def sdk(live: LiveServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=live.base_url, api_key="test", max_retries=0, timeout=120)


def follow_up(client: openai.OpenAI, audio_id: str):
    return client.chat.completions.create(model="omnimini-mini", max_tokens=3, messages=[
        {"role": "user", "content": PROMPT}, {"role": "assistant", "audio": {"id": audio_id}},
        {"role": "user", "content": "Thanks."}])


def test_an_audio_id_outlives_a_restart(tmp_path):
    live = LiveServer([], tmp_path)
    try:
        r = sdk(live).chat.completions.create(
            model="omnimini-mini", modalities=["text", "audio"], audio={"voice": "alloy", "format": "pcm16"},
            max_tokens=12, temperature=0, messages=[{"role": "user", "content": PROMPT}])
        audio = r.choices[0].message.audio
    finally:
        live.stop()
    store = Store.open(default_url(tmp_path / "data"))
    assert load(store, audio.id) == audio.transcript                # written when the reply was made
    with store.write() as s:                                        # and one that has run out
        s.add(AudioTranscript(id="audio_expired", transcript="old words", expires_at=int(time.time()) - 1))

    live = LiveServer([], tmp_path)                                 # a new process: nothing in memory
    try:
        client = sdk(live)
        assert follow_up(client, audio.id).choices[0].finish_reason in ("stop", "length")
        for unknown in ("audio_expired", "audio_never_made"):
            with pytest.raises(openai.BadRequestError) as e:
                follow_up(client, unknown)
            assert e.value.body["param"] == "messages[1].audio" and "expired" in e.value.body["message"]
    finally:
        live.stop()


def test_saving_purges_expired_ids(tmp_path):
    store = Store.open(default_url(tmp_path))
    past = int(time.time()) - 10
    for i in range(3):
        save(store, f"audio_old{i}", "gone", past)
    assert load(store, "audio_old0") is None                        # expired: not returned
    save(store, "audio_new", "hello there", int(time.time()) + 60)
    save(store, "audio_new", "hello again", int(time.time()) + 60)  # the same id again: replaced
    assert load(store, "audio_new") == "hello again"
    with store.read() as s:
        assert s.scalar(select(func.count()).select_from(AudioTranscript)) == 1
