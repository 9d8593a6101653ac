"""Voice latency: end of speech -> first byte of the spoken answer, streaming loop vs the old
three-model pipeline, in one run against one server.

    .venv/bin/python bench/voice_latency.py [--url http://127.0.0.1:8000] [--reps 2] [--json out.json]

Without --url it starts `python -m omnimini serve` (2 threads) on a free loopback port.

Questions (about 2 s each) are spoken by Piper here, offline. For each question, in turn:

(a) streaming loop, server VAD: the question goes over ws://.../v1/voice in 20 ms frames at
    speaking pace, followed by silence at speaking pace, as a microphone sends it. End of speech =
    the moment the frame holding the last voiced sample was sent. The server must notice the end
    itself (hangover), transcribe, stream tokens, cut the first clause, synthesise it and send it.
(b) streaming loop, push-to-talk: the same, but the client says `input_audio_buffer.commit` as the
    last voiced frame is sent (no hangover, and no quiet in which to start early).
(c) sequential pipeline (GPT-4o's "voice mode" before GPT-4o: three models one after another,
    nothing streamed): at end of speech the whole recording is POSTed to /v1/audio/transcriptions,
    the text to /v1/chat/completions (not streamed), the answer to /v1/audio/speech (wav), and the
    audio is played once it has all arrived. Measured: end of speech -> last byte of the wav (the
    first byte a player of the old pipeline could use), and, for reference, -> its first byte.

Same server, same models (Whisper tiny.en, the chat model, Piper), same system prompt and token
limit on all sides; runs alternate a, b, c per question and never overlap. Reported: medians,
and the ratio of the sequential pipeline's median to each streaming median. Target (GPT-4o's
average answer to audio): 320 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import websockets

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from omnimini.engine.audio import decode, wav_bytes  # noqa: E402
from omnimini.voice.loop import VOICE_INSTRUCTIONS, VOICE_MAX_TOKENS  # noqa: E402
from omnimini.voice.vad import RATE, SPEECH_DBFS  # noqa: E402

QUESTIONS = [
    "What is the capital of France?",
    "How many days are in a week?",
    "What color is the sky on a clear day?",
    "What do bees make?",
    "Can you name a yellow fruit?",
    "What is the opposite of hot?",
    "Where does the sun rise?",
    "What animal says moo?",
]
TARGET_MS = 320.0            # GPT-4o's average response time to audio (OpenAI, "Hello GPT-4o", 2024)
FRAME_MS = 20
TRAILING_SILENCE_S = 1.5     # silence sent after the question in mode (a), at speaking pace
CHAT_MODEL = "omnimini-mini"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def speak_questions(http: httpx.Client) -> list[np.ndarray]:
    """Each question as 16 kHz float audio, trimmed to its last voiced frame."""
    out = []
    for q in QUESTIONS:
        wav = http.post("/v1/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": q,
                                                  "response_format": "wav"}).content
        a = decode(wav)
        frames = a[: len(a) // 320 * 320].reshape(-1, 320)
        loud = np.where(20 * np.log10(np.sqrt((frames ** 2).mean(1)) + 1e-9) > SPEECH_DBFS)[0]
        out.append(a[: (loud[-1] + 1) * 320])
    return out


async def streaming(ws_url: str, audio: np.ndarray, push_to_talk: bool) -> dict:
    pcm = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    step = RATE * 2 * FRAME_MS // 1000
    silence = bytes(step)
    params = "?vad=none" if push_to_talk else "?vad=server"
    async with websockets.connect(ws_url + params, max_size=None) as ws:
        hello = json.loads(await ws.recv())
        assert hello["type"] == "session.created", hello
        result: dict = {}
        first_audio = asyncio.get_running_loop().create_future()

        async def reader():
            while True:
                msg = await ws.recv()
                if isinstance(msg, bytes):
                    if not first_audio.done():
                        first_audio.set_result(time.monotonic())
                    continue
                ev = json.loads(msg)
                if ev["type"] == "response.done":
                    result.update(ev)
                    return
                if ev["type"] == "error":
                    raise RuntimeError(ev)

        task = asyncio.create_task(reader())
        start = time.monotonic()
        k = 0
        for i in range(0, len(pcm), step):
            await ws.send(pcm[i:i + step])
            k += 1
            await asyncio.sleep(max(0.0, start + k * FRAME_MS / 1000 - time.monotonic()))
        t_end = time.monotonic()              # the last voiced frame has just been sent
        if push_to_talk:
            await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        else:
            for _ in range(int(TRAILING_SILENCE_S * 1000 / FRAME_MS)):
                if task.done() or first_audio.done():
                    break
                await ws.send(silence)
                k += 1
                await asyncio.sleep(max(0.0, start + k * FRAME_MS / 1000 - time.monotonic()))
        await asyncio.wait_for(task, 60)
        return {"first_audio_ms": (first_audio.result() - t_end) * 1000 if first_audio.done() else None,
                "transcript": result.get("transcript"), "answer": result.get("text"),
                "server_ms": result.get("timings_ms")}


def sequential(http: httpx.Client, audio: np.ndarray) -> dict:
    wav = wav_bytes((np.clip(audio, -1, 1) * 32767).astype(np.int16), RATE)
    t_end = time.monotonic()
    text = http.post("/v1/audio/transcriptions", data={"model": "omnimini-transcribe"},
                     files={"file": ("q.wav", wav, "audio/wav")}).json()["text"]
    t_asr = time.monotonic()
    r = http.post("/v1/chat/completions", json={
        "model": CHAT_MODEL, "max_tokens": VOICE_MAX_TOKENS,
        "messages": [{"role": "system", "content": VOICE_INSTRUCTIONS}, {"role": "user", "content": text}]})
    answer = r.json()["choices"][0]["message"]["content"]
    t_llm = time.monotonic()
    first = None
    with http.stream("POST", "/v1/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": answer,
                                                      "response_format": "wav"}) as s:
        for _ in s.iter_bytes():
            first = first or time.monotonic()
    t_done = time.monotonic()
    return {"first_audio_ms": (t_done - t_end) * 1000, "first_byte_ms": (first - t_end) * 1000,
            "asr_ms": (t_asr - t_end) * 1000, "llm_ms": (t_llm - t_asr) * 1000, "tts_ms": (t_done - t_llm) * 1000,
            "transcript": text, "answer": answer}


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--url", help="a running omnimini server (default: start one)")
    ap.add_argument("--reps", type=int, default=2, help="passes over the questions")
    ap.add_argument("--json", type=Path, help="write all measurements here")
    args = ap.parse_args()

    proc = None
    url = args.url
    if not url:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        tmp = Path(tempfile.mkdtemp(prefix="omnimini-voice-bench-"))
        proc = subprocess.Popen([sys.executable, "-m", "omnimini", "serve", "--host", "127.0.0.1",
                                 "--port", str(port), "--threads", "2", "--data-dir", str(tmp / "data"),
                                 "--preload", CHAT_MODEL], stdout=open(tmp / "server.log", "wb"),
                                stderr=subprocess.STDOUT, env={**os.environ})
        for _ in range(600):
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise SystemExit(f"server did not start; see {tmp / 'server.log'}")
    ws_url = url.replace("http", "ws", 1) + "/v1/voice"
    rows = {"vad": [], "ptt": [], "seq": []}
    try:
        with httpx.Client(base_url=url, timeout=120) as http:
            questions = speak_questions(http)
            sequential(http, questions[0])                         # warm every model once
            asyncio.run(streaming(ws_url, questions[0], True))
            for rep in range(args.reps):
                for q, audio in zip(QUESTIONS, questions):
                    a = asyncio.run(streaming(ws_url, audio, push_to_talk=False))
                    b = asyncio.run(streaming(ws_url, audio, push_to_talk=True))
                    c = sequential(http, audio)
                    for key, row in (("vad", a), ("ptt", b), ("seq", c)):
                        rows[key].append({"question": q, "seconds": len(audio) / RATE, **row})
                    print(f"{q:40s} {len(audio) / RATE:4.1f}s  vad {a['first_audio_ms']:6.0f}  "
                          f"ptt {b['first_audio_ms']:6.0f}  seq {c['first_audio_ms']:6.0f} ms   "
                          f"(ptt server: {b['server_ms']}) -> {b['answer'][:60]!r}", flush=True)
    finally:
        if proc:
            proc.terminate()
            proc.wait(10)

    med = {k: median([r["first_audio_ms"] for r in v]) for k, v in rows.items()}
    seq_first_byte = median([r["first_byte_ms"] for r in rows["seq"]])
    parts = {k: median([r[k] for r in rows["seq"]]) for k in ("asr_ms", "llm_ms", "tts_ms")}
    print()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
          f"questions: {len(QUESTIONS)} x {args.reps}, median length "
          f"{statistics.median(r['seconds'] for r in rows['ptt']):.1f} s")
    print(f"streaming loop, server VAD (incl. {json.dumps('hangover')}): median {med['vad']:.0f} ms "
          f"(target {TARGET_MS:.0f}: {'met' if med['vad'] <= TARGET_MS else 'missed'})")
    print(f"streaming loop, push-to-talk:           median {med['ptt']:.0f} ms "
          f"(target {TARGET_MS:.0f}: {'met' if med['ptt'] <= TARGET_MS else 'missed'})")
    print(f"sequential three-model pipeline:         median {med['seq']:.0f} ms to the whole answer "
          f"(ASR {parts['asr_ms']:.0f} + LLM {parts['llm_ms']:.0f} + TTS {parts['tts_ms']:.0f}); "
          f"first byte of its (streamed) wav {seq_first_byte:.0f} ms")
    print(f"ratio sequential / streaming: {med['seq'] / med['vad']:.1f}x (server VAD), "
          f"{med['seq'] / med['ptt']:.1f}x (push-to-talk)")
    if args.json:
        args.json.write_text(json.dumps({"medians_ms": med, "sequential_parts_ms": parts,
                                         "sequential_first_byte_ms": seq_first_byte, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
