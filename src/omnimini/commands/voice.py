"""`omnimini voice --in question.wav --out answer.wav`: one spoken turn from files.

In-process by default (loads the models here); `--url ws://HOST:PORT/v1/voice` drives a running
server's voice loop instead, streaming the question in real time as a microphone would.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console

app = typer.Typer(help="The voice loop from files: a spoken question in, a spoken answer out.")
console = Console(stderr=True)
CHUNK_MS = 20                 # microphone-sized frames when streaming to a server


def _write_wav(path: Path, pcm: bytes, rate: int) -> None:
    from omnimini.engine.audio import wav_header
    path.write_bytes(wav_header(rate, len(pcm)) + pcm)


async def _in_process(audio: np.ndarray, model: str) -> tuple[dict, bytes]:
    from omnimini.service.runtime import Runtime
    from omnimini.settings import Settings
    from omnimini.voice.loop import VoiceSession

    s = Settings()
    runtime = Runtime.build(s.catalog(), data_dir=s.data_path, n_threads=s.threads)
    try:
        session = VoiceSession(runtime.chat, runtime.speech, model=model, speculate=False)
        session.feed(audio)
        t_end = time.monotonic()
        turn = session.commit()
        pcm, first = b"", None
        async for kind, value in turn.stream():
            if kind == "audio":
                first = first or time.monotonic()
                pcm += value
            elif kind == "error":
                raise typer.BadParameter(str(value))
        info = {"transcript": turn.user_text, "text": turn.text,
                "first_audio_ms": round(((first or time.monotonic()) - t_end) * 1000, 1)}
        return info, pcm
    finally:
        await runtime.close()


async def _over_websocket(audio: np.ndarray, url: str, realtime: bool) -> tuple[dict, bytes]:
    import websockets

    pcm16 = (np.clip(audio, -1, 1) * 32767).astype("<i2").tobytes()
    step = 16000 * 2 * CHUNK_MS // 1000
    async with websockets.connect(url, max_size=None) as ws:
        hello = json.loads(await ws.recv())
        if hello.get("type") == "error":
            raise typer.BadParameter(hello["error"]["message"])
        start = time.monotonic()
        for k, i in enumerate(range(0, len(pcm16), step)):
            await ws.send(pcm16[i:i + step])
            if realtime:
                await asyncio.sleep(max(0.0, start + (k + 1) * CHUNK_MS / 1000 - time.monotonic()))
        t_end = time.monotonic()
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        pcm, first = b"", None
        while True:
            msg = await ws.recv()
            if isinstance(msg, bytes):
                first = first or time.monotonic()
                pcm += msg
                continue
            ev = json.loads(msg)
            if ev["type"] == "error":
                raise typer.BadParameter(ev["error"]["message"])
            if ev["type"] == "response.done":
                info = {"transcript": ev["transcript"], "text": ev["text"],
                        "first_audio_ms": round(((first or time.monotonic()) - t_end) * 1000, 1)}
                return info, pcm


@app.callback(invoke_without_command=True)
def voice(
    input: Path = typer.Option(..., "--in", exists=True, dir_okay=False, help="The spoken question (any audio file)."),
    output: Path = typer.Option(..., "--out", help="Where to write the spoken answer (wav, 24 kHz)."),
    url: Optional[str] = typer.Option(None, help="A server's voice socket, e.g. ws://127.0.0.1:8000/v1/voice; "
                                      "default: run the models in this process."),
    model: str = typer.Option("omnimini-mini", "--model", "-m", help="Chat model (in-process only)."),
    realtime: bool = typer.Option(True, help="With --url: send the question at speaking pace."),
) -> None:
    """Answer a spoken question with a spoken answer."""
    from omnimini.engine.audio import OUTPUT_RATE, BadAudio, decode

    try:
        audio = decode(input.read_bytes())
    except BadAudio as e:
        raise typer.BadParameter(f"{input}: {e}", param_hint="--in") from None
    with console.status("thinking out loud..."):
        info, pcm = asyncio.run(_over_websocket(audio, url, realtime) if url else _in_process(audio, model))
    _write_wav(output, pcm, OUTPUT_RATE)
    console.print(f"[bold]heard:[/bold] {info['transcript']}\n[bold]said:[/bold] {info['text']}\n"
                  f"first audio after {info['first_audio_ms']} ms; {len(pcm) / 2 / OUTPUT_RATE:.1f} s of answer "
                  f"-> {output}")
