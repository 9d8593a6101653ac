"""The voice loop: ws://.../v1/voice against the live server, `omnimini voice` from files, and the
pure parts (clause cutting, end-of-speech detection)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import numpy as np
import pytest
from websockets.sync.client import connect

from store_fixtures import usage_rows
from omnimini.engine.audio import decode, wav_bytes
from omnimini.service.audio_reply import ClauseCutter
from omnimini.voice.vad import EnergyVAD

QUESTION = "What is the capital of France?"


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


@pytest.fixture(scope="module")
def question(client) -> np.ndarray:
    wav = client.audio.speech.create(model="tts-1", voice="alloy", input=QUESTION, response_format="wav").content
    return decode(wav)      # 16 kHz float


def pcm16(audio: np.ndarray) -> bytes:
    return (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()


def converse(ws, frames: list[bytes], commit: bool) -> tuple[list[dict], bytes]:
    for f in frames:
        ws.send(f)
    if commit:
        ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
    events, audio = [], b""
    while True:
        msg = ws.recv(timeout=60)
        if isinstance(msg, bytes):
            audio += msg
            continue
        events.append(json.loads(msg))
        if events[-1]["type"] in ("response.done", "error"):
            return events, audio


def test_voice_socket_answers_a_spoken_question(server, client, question):
    since = time.time()
    with connect(server.url.replace("http", "ws") + "/v1/voice?vad=none", max_size=None) as ws:
        hello = json.loads(ws.recv(timeout=60))
        assert hello["type"] == "session.created" and hello["output_audio"]["sample_rate"] == 24000
        data = pcm16(question)
        events, audio = converse(ws, [data[i:i + 640] for i in range(0, len(data), 640)], commit=True)
        kinds = [e["type"] for e in events]
        assert kinds[0] == "speech_started" and "transcript" in kinds and kinds[-1] == "response.done"
        done = events[-1]
        assert words(done["transcript"]) == words(QUESTION)
        assert done["text"].strip() and "".join(e["delta"] for e in events if e["type"] == "text.delta") == done["text"]
        t = done["timings_ms"]
        assert 0 <= t["first_audio_sent"] <= t["done"] + 1
        assert len(audio) / 48000 > 0.5                       # seconds of 24 kHz pcm16
        heard = client.audio.transcriptions.create(model="omnimini-transcribe",
                                                   file=("a.wav", wav_bytes(np.frombuffer(audio, "<i2"), 24000))).text
        assert len(set(words(heard)) & set(words(done["text"]))) >= len(set(words(done["text"]))) // 2
        # A second turn on the same socket remembers the first (the history grows).
        events2, audio2 = converse(ws, [data], commit=True)
        assert events2[-1]["type"] == "response.done" and audio2
    # Each turn is metered: the transcriber's seconds, the chat model's tokens, the voice's characters.
    rows = voice_rows(server, 6, since)
    assert len(rows) == 6, rows
    by_model = {}
    for r in rows:
        by_model.setdefault(r.model, []).append(r)
    assert set(by_model) == {"whisper-tiny.en", "omnimini-mini-2026-11-21", "piper-en-us-joe-medium"}
    assert all(abs(r.prompt_tokens - len(question) / 16000) <= 1 for r in by_model["whisper-tiny.en"])
    assert by_model["piper-en-us-joe-medium"][0].prompt_tokens == len(done["text"])
    chat = by_model["omnimini-mini-2026-11-21"]
    assert all(r.prompt_tokens > 0 and r.completion_tokens > 0 and r.cost > 0 for r in chat)
    assert chat[1].prompt_tokens > chat[0].prompt_tokens          # the second turn carries the first


def voice_rows(server, n: int, since: float) -> list:
    from omnimini.metering.tables import UsageRecord
    from omnimini.store import Store, default_url
    store = Store.open(default_url(server.log_path.parent / "data"))
    return usage_rows(store, n, UsageRecord.endpoint == "/v1/voice", UsageRecord.created_at >= since)


def test_server_vad_ends_the_turn(server, question):
    with connect(server.url.replace("http", "ws") + "/v1/voice", max_size=None) as ws:
        json.loads(ws.recv(timeout=60))
        silence = bytes(16000 * 2 // 2)                       # 0.5 s, longer than the hangover
        events, audio = converse(ws, [pcm16(question), silence], commit=False)
        kinds = [e["type"] for e in events]
        assert kinds[:2] == ["speech_started", "speech_stopped"] and kinds[-1] == "response.done"
        assert audio


LONG = "instructions=Answer+in+five+long+sentences.&max_tokens=120"


def until_audio(ws) -> list[dict]:
    """Events until the first audio frame of the answer arrives."""
    events = []
    while True:
        msg = ws.recv(timeout=60)
        if isinstance(msg, bytes):
            return events
        events.append(json.loads(msg))
        assert events[-1]["type"] != "response.done", "the answer ended before it could be interrupted"


def test_speaking_over_an_answer_cancels_it(server, question):
    """Barge-in: speech that starts while an answer plays cancels the answer; the new question is
    then answered, and the cancelled answer's words so far are part of the conversation."""
    with connect(server.url.replace("http", "ws") + f"/v1/voice?vad=none&{LONG}", max_size=None) as ws:
        json.loads(ws.recv(timeout=60))
        data = pcm16(question)
        ws.send(data)
        ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        until_audio(ws)
        events, _ = converse(ws, [data], commit=False)            # they talk over the answer
        kinds = [e["type"] for e in events]
        assert "speech_started" in kinds
        done = events[-1]
        assert (done["type"], done["status"], done["reason"]) == ("response.done", "cancelled", "speech_started")
        assert words(done["transcript"]) == words(QUESTION)
        events, audio = converse(ws, [], commit=True)             # the new question, committed
        assert events[-1]["status"] == "completed" and audio
        assert words(events[-1]["transcript"]) == words(QUESTION)


def test_response_cancel_stops_the_answer_and_bills_what_was_generated(server, question):
    since = time.time()
    with connect(server.url.replace("http", "ws") + f"/v1/voice?vad=none&interrupt=0&{LONG}", max_size=None) as ws:
        json.loads(ws.recv(timeout=60))
        ws.send(pcm16(question))
        ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        until_audio(ws)
        events, _ = converse(ws, [json.dumps({"type": "response.cancel"})], commit=False)
        done = events[-1]
        assert (done["status"], done["reason"]) == ("cancelled", "client")
        # the socket still works: another turn is answered in full
        events, audio = converse(ws, [pcm16(question)], commit=True)
        assert events[-1]["status"] == "completed" and audio
    rows = [r for r in voice_rows(server, 6, since) if r.model == "omnimini-mini-2026-11-21"]
    assert len(rows) == 2
    cut = min(rows, key=lambda r: r.created_at)
    assert 0 < cut.completion_tokens < 120           # billed for what was generated before the cancel


def test_voice_socket_bad_input(server):
    with connect(server.url.replace("http", "ws") + "/v1/voice", max_size=None) as ws:
        json.loads(ws.recv(timeout=60))
        ws.send(b"\x00\x01\x02")                              # not 16-bit samples
        assert json.loads(ws.recv(timeout=10))["type"] == "error"
        ws.send(json.dumps({"type": "frobnicate"}))
        assert "unknown event" in json.loads(ws.recv(timeout=10))["error"]["message"]
    with connect(server.url.replace("http", "ws") + "/v1/voice?model=omnimini-embed") as ws:
        ev = json.loads(ws.recv(timeout=60))
        assert ev["type"] == "error" and ev["error"]["param"] == "model"


def test_voice_cli_from_files(server, question, tmp_path):
    q, a = tmp_path / "q.wav", tmp_path / "a.wav"
    q.write_bytes(wav_bytes((question * 32767).astype(np.int16), 16000))
    url = server.url.replace("http", "ws") + "/v1/voice"
    r = subprocess.run([sys.executable, "-m", "omnimini", "voice", "--in", str(q), "--out", str(a), "--url", url,
                        "--no-realtime"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "heard: What is the capital of France?" in r.stderr
    assert len(decode(a.read_bytes())) > 8000                 # more than half a second of answer
    bad = subprocess.run([sys.executable, "-m", "omnimini", "voice", "--in", str(tmp_path / "a.wav.missing"),
                          "--out", str(a)], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2


def test_clause_cutter():
    c = ClauseCutter(first_min=12, first_words=4)
    out = []
    for piece in ["The cap", "ital of France is", " Paris. It is", " big, old, and lovely", ", truly.", " Yes"]:
        out += c.feed(piece)
    assert out + c.finish() == ["The capital of France", "is Paris.", "It is big, old, and lovely,", "truly.", "Yes"]


def test_vad_finds_the_end_of_speech():
    rate = 16000
    tone = 0.3 * np.sin(np.arange(rate) * 2 * np.pi * 220 / rate).astype(np.float32)
    vad = EnergyVAD(hangover_ms=300)
    events = vad.feed(np.zeros(rate // 2, np.float32)) + vad.feed(tone)
    assert events == ["speech_started"]
    assert vad.feed(np.zeros(rate // 5, np.float32)) == ["quiet"]              # 200 ms: not yet the end
    assert vad.feed(np.zeros(rate // 5, np.float32)) == ["speech_stopped"]     # 400 ms > hangover
    assert vad.state.last_voice == rate // 2 + rate


def test_voice_socket_needs_a_key_when_auth_is_on(tmp_path):
    from conftest import LiveServer
    from omnimini.access.keys import Keys
    from omnimini.store import Store, default_url

    keys = Keys(Store.open(default_url(tmp_path / "data")))
    key, limited = keys.create("voice").secret, keys.create("voice-rpm1", rpm=1).secret
    live = LiveServer(["--preload", "omnimini-embed", "--auth"], tmp_path)
    try:
        ws_url = live.url.replace("http", "ws") + "/v1/voice"
        for url, headers in ((ws_url, None), (ws_url + "?api_key=wrong", None)):
            with connect(url, additional_headers=headers) as ws:
                ev = json.loads(ws.recv(timeout=30))
                assert ev["type"] == "error" and ev["error"]["code"] == "invalid_api_key"
        with connect(ws_url, additional_headers={"Authorization": f"Bearer {key}"}) as ws:
            assert json.loads(ws.recv(timeout=60))["type"] == "session.created"
        with connect(ws_url + f"?api_key={key}") as ws:
            assert json.loads(ws.recv(timeout=60))["type"] == "session.created"
        # Each committed turn is one request of the key's RPM (an empty turn needs no chat model).
        with connect(ws_url + f"?api_key={limited}") as ws:
            assert json.loads(ws.recv(timeout=60))["type"] == "session.created"
            ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            assert json.loads(ws.recv(timeout=30))["type"] == "transcript"
            assert json.loads(ws.recv(timeout=30))["type"] == "response.done"
            ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
            ev = json.loads(ws.recv(timeout=30))
            assert ev["type"] == "error" and ev["error"]["code"] == "rate_limit_exceeded", ev
            assert ev["error"]["retry_after"] > 0
        import httpx
        assert httpx.post(live.base_url + "/audio/speech", json={"model": "tts-1", "voice": "alloy",
                                                                 "input": "hi"}).status_code == 401
    finally:
        live.stop()
