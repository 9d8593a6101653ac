"""The voice loop's WebSocket: `ws://HOST/v1/voice` (protocol in docs/audio.md).

Client -> server: binary frames of 16-bit little-endian mono PCM at 16 kHz (any length); text
frames `{"type": "input_audio_buffer.commit"}` (end of speech now, as push-to-talk or a
client-side VAD decides) or `{"type": "input_audio_buffer.clear"}`.
Server -> client: text frames `session.created`, `speech_started`, `speech_stopped`, `transcript`,
`text.delta`, `response.done` (with timings from the end of speech) or `error`; binary frames of the
answer's audio, 16-bit mono PCM at 24 kHz, sent as each clause is synthesised.
Query parameters: model, instructions, max_tokens, vad (server|none), hangover_ms, speculate (1|0).
"""

from __future__ import annotations

import json
import time

import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from omnimini.engine.audio import OUTPUT_RATE
from omnimini.protocol.errors import APIError
from omnimini.voice.loop import VOICE_INSTRUCTIONS, VOICE_MAX_TOKENS, VoiceSession
from omnimini.voice.vad import HANGOVER_MS, RATE

router = APIRouter()

MAX_FRAME_BYTES = 1 << 20          # one binary frame: ~32 s of audio; more is a client bug


def _ms(turn, name: str, t_end: float) -> float | None:
    t = turn.marks.get(name)
    return None if t is None else round((t - t_end) * 1000, 1)


@router.websocket("/v1/voice")
async def voice(ws: WebSocket):
    q = ws.query_params
    runtime = ws.app.state.runtime
    await ws.accept()
    if not await _authorized(ws):      # the access middleware sees HTTP only: check the key here
        await ws.send_json({"type": "error", "error": {"message": "Missing or invalid API key (send "
                            "Authorization: Bearer KEY, or ?api_key=KEY from a browser).", "code": "invalid_api_key"}})
        await ws.close(code=1008)
        return
    try:
        session = VoiceSession(runtime.chat, runtime.speech, model=q.get("model", "omnimini-mini"),
                               instructions=q.get("instructions", VOICE_INSTRUCTIONS),
                               max_tokens=int(q.get("max_tokens", VOICE_MAX_TOKENS)),
                               hangover_ms=int(q.get("hangover_ms", HANGOVER_MS)),
                               speculate=q.get("speculate", "1") != "0")
        runtime.catalog.resolve(session.model, kind="chat")
        await runtime.speech.whisper(session.transcriber)     # load now, not in the first turn
        await runtime.speech.piper(session.voice_model)
    except (APIError, ValueError) as e:
        await ws.send_json({"type": "error", "error": {"message": str(e), "param": getattr(e, "param", None)}})
        await ws.close(code=1008)
        return
    server_vad = q.get("vad", "server") != "none"
    await ws.send_json({"type": "session.created", "model": session.model,
                        "input_audio": {"format": "pcm16", "sample_rate": RATE},
                        "output_audio": {"format": "pcm16", "sample_rate": OUTPUT_RATE},
                        "turn_detection": {"type": "server_vad" if server_vad else "none",
                                           "hangover_ms": session.vad.hangover_ms}})
    try:
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                break
            end = False
            if msg.get("bytes") is not None:
                data = msg["bytes"]
                if len(data) > MAX_FRAME_BYTES or len(data) % 2:
                    await ws.send_json({"type": "error", "error": {"message": "audio frames are 16-bit PCM, "
                                                                  f"at most {MAX_FRAME_BYTES} bytes"}})
                    continue
                events = session.feed(np.frombuffer(data, "<i2").astype(np.float32) / 32768)
                for ev in events:
                    if ev in ("speech_started", "speech_stopped"):
                        await ws.send_json({"type": ev})
                end = server_vad and "speech_stopped" in events
            elif msg.get("text"):
                try:
                    kind = json.loads(msg["text"]).get("type")
                except (ValueError, AttributeError):
                    kind = None
                if kind == "input_audio_buffer.commit":
                    end = True
                elif kind == "input_audio_buffer.clear":
                    session.clear()
                else:
                    await ws.send_json({"type": "error", "error": {"message": f"unknown event {kind!r}"}})
            if end:
                await _answer(ws, session)
    except WebSocketDisconnect:
        pass
    finally:
        session.close()


async def _authorized(ws: WebSocket) -> bool:
    platform = getattr(ws.app.state, "platform", None)
    if platform is None or not platform.auth:
        return True
    auth = ws.headers.get("authorization", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else ws.query_params.get("api_key")
    return bool(token) and await platform.store.run(platform.keys.verify, token) is not None


async def _answer(ws: WebSocket, session: VoiceSession) -> None:
    t_end = time.monotonic()
    turn = session.commit()
    first_audio = None
    async for kind, value in turn.stream():
        if kind == "audio":
            await ws.send_bytes(value)
            if first_audio is None:
                first_audio = time.monotonic()
        elif kind == "transcript":
            await ws.send_json({"type": "transcript", "text": value})
        elif kind == "text":
            await ws.send_json({"type": "text.delta", "delta": value})
        elif kind == "error":
            await ws.send_json({"type": "error", "error": {"message": str(value), "param": value.param}})
        elif kind == "done":
            session.finish(turn)
            await ws.send_json({"type": "response.done", "transcript": turn.user_text, "text": value, "timings_ms": {
                "transcript": _ms(turn, "transcript", t_end), "first_token": _ms(turn, "first_token", t_end),
                "first_audio_sent": None if first_audio is None else round((first_audio - t_end) * 1000, 1),
                "done": _ms(turn, "done", t_end)}})
