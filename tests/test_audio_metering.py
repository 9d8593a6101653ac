"""The audio routes under the platform (--auth) with the official openai SDK: RPM limits answer 429,
a key's model list applies, and each request writes a usage row with the units OpenAI bills (seconds
of audio in, characters of text in) at the catalog's prices. The server preloads only the numpy
embedder; Whisper and Piper load on first use.

Loads Whisper and Piper: run under the shared lock
    flock /tmp/omnimini-llama.lock .venv/bin/python -m pytest tests/test_audio_metering.py -x -q
"""

from __future__ import annotations


import openai
import pytest

from conftest import LiveServer
from store_fixtures import usage_rows
from omnimini.access.keys import Keys
from omnimini.metering.tables import UsageRecord
from omnimini.models.catalog import SPEECH_PRICES, SPEECH_SNAPSHOT, TRANSCRIBE_PRICES, TRANSCRIBE_SNAPSHOT
from omnimini.store import Store, default_url

SENTENCE = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("audio-metering")
    store = Store.open(default_url(tmp / "data"))
    keys = Keys(store)
    k = {name: keys.create(name, **opts).secret for name, opts in {
        "free": {}, "rpm1": {"rpm": 1}, "tpm": {"tpm": 20}, "chat-only": {"models": ["omnimini-mini"]}}.items()}
    live = LiveServer(["--preload", "omnimini-embed", "--auth"], tmp)
    yield {"store": store, "keys": k, "server": live}
    live.stop()


def sdk(env, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=env["server"].base_url, api_key=env["keys"][key], max_retries=0, timeout=120)


def speak(client: openai.OpenAI, text: str = SENTENCE) -> bytes:
    return client.audio.speech.create(model="tts-1", voice="alloy", input=text, response_format="wav").content


def rows(env, key: str, endpoint: str, n: int) -> list[UsageRecord]:
    """The key's usage rows for `endpoint`, once there are n."""
    key_id = Keys(env["store"]).find(key).id
    return usage_rows(env["store"], n, UsageRecord.key_id == key_id, UsageRecord.endpoint == endpoint)


def test_transcription_and_speech_write_usage_rows(env):
    client = sdk(env, "free")
    wav = speak(client)
    said = rows(env, "free", "/v1/audio/speech", 1)
    assert len(said) == 1 and said[0].status == 200 and said[0].model == SPEECH_SNAPSHOT
    assert said[0].prompt_tokens == len(SENTENCE) and said[0].completion_tokens == 0
    assert said[0].cost == pytest.approx(len(SENTENCE) * SPEECH_PRICES[0] / 1e6)     # tts-1: $15 / 1M characters

    t = client.audio.transcriptions.create(model="omnimini-transcribe", file=("q.wav", wav))
    assert "fox" in t.text.lower()
    seconds = t.usage.seconds
    assert seconds >= 2
    heard = rows(env, "free", "/v1/audio/transcriptions", 1)
    assert len(heard) == 1 and heard[0].status == 200 and heard[0].model == TRANSCRIBE_SNAPSHOT
    assert heard[0].prompt_tokens == seconds
    assert heard[0].cost == pytest.approx(seconds * 0.006 / 60)                        # whisper-1: $0.006 / minute
    assert TRANSCRIBE_PRICES[0] * 60 / 1e6 == pytest.approx(0.006)

    # A refused upload is a 400 and its row says so, at no cost.
    with pytest.raises(openai.BadRequestError):
        client.audio.transcriptions.create(model="omnimini-transcribe", file=("q.wav", b"not audio"))
    bad = rows(env, "free", "/v1/audio/transcriptions", 2)[-1]
    assert bad.status == 400 and bad.cost == 0

    bill = client._client.get(env["server"].base_url + "/usage", params={"group_by": "model"},
                              headers={"Authorization": f"Bearer {env['keys']['free']}"}).json()
    by_model = {line["group"]: line for line in bill["data"]}
    assert by_model[SPEECH_SNAPSHOT]["cost"] == pytest.approx(said[0].cost, abs=1e-8)


def test_rpm_limit_on_the_audio_routes(env):
    client = sdk(env, "rpm1")
    raw = client.audio.speech.with_raw_response.create(model="tts-1", voice="alloy", input="One.",
                                                       response_format="wav")
    assert raw.headers["x-ratelimit-limit-requests"] == "1"
    assert raw.headers["x-ratelimit-remaining-requests"] == "0"
    with pytest.raises(openai.RateLimitError) as e:
        speak(client, "Two.")
    assert e.value.status_code == 429 and e.value.code == "rate_limit_exceeded"
    assert int(e.value.response.headers["retry-after"]) >= 1
    # Limits are per model, as OpenAI's: Whisper has its own window, and it fills the same way.
    wav = raw.parse().content
    client.audio.transcriptions.create(model="omnimini-transcribe", file=("a.wav", wav))
    with pytest.raises(openai.RateLimitError):
        client.audio.transcriptions.create(model="omnimini-transcribe", file=("a.wav", wav))
    assert rows(env, "rpm1", "/v1/audio/speech", 2)[-1].status == 429


def test_audio_units_are_not_tokens_for_tpm(env):
    client = sdk(env, "tpm")                   # 20 tokens a minute: far fewer than these characters
    speak(client)
    speak(client)


def test_a_key_only_reaches_its_models(env):
    with pytest.raises(openai.NotFoundError) as e:
        speak(sdk(env, "chat-only"))
    assert e.value.code == "model_not_found"
