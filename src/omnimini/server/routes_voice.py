"""The voice loop's WebSocket: `ws://HOST/v1/voice` (protocol in docs/audio.md).

Client -> server: binary frames of 16-bit little-endian mono PCM at 16 kHz (any length); text
frames `{"type": "input_audio_buffer.commit"}` (end of speech now, as push-to-talk or a
client-side VAD decides) or `{"type": "input_audio_buffer.clear"}`.
Server -> client: text frames `session.created`, `speech_started`, `speech_stopped`, `transcript`,
`text.delta`, `response.done` (with timings from the end of speech) or `error`; binary frames of the
answer's audio, 16-bit mono PCM at 24 kHz, sent as each clause is synthesised.
Query parameters: model, instructions, max_tokens, vad (server|none), hangover_ms, speculate (1|0).

Metering: each answered turn writes three usage rows on endpoint VOICE_ENDPOINT (the transcriber's
seconds, the chat model's tokens, the voice's characters: the units and prices of the HTTP routes)
and counts as one request against the key's RPM for the chat model, admitted when the turn is
committed. Speculative turns run under the session's request context without a limiter (a
cancelled guess costs no request); the key's model list applies to them as to any chat request.
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from omnimini.access.context import RequestContext, opened
from omnimini.engine.audio import OUTPUT_RATE
from omnimini.metering.usage import record
from omnimini.protocol.common import Usage
from omnimini.protocol.errors import APIError, RateLimitExceeded
from omnimini.voice.loop import VOICE_INSTRUCTIONS, VOICE_MAX_TOKENS, VoiceSession
from omnimini.voice.vad import HANGOVER_MS, RATE

router = APIRouter()
log = logging.getLogger(__name__)
VOICE_ENDPOINT = "/v1/voice"       # the endpoint named on a voice turn's usage rows

MAX_FRAME_BYTES = 1 << 20          # one binary frame: ~32 s of audio; more is a client bug


def _ms(turn, name: str, t_end: float) -> float | None:
    t = turn.marks.get(name)
    return None if t is None else round((t - t_end) * 1000, 1)


@router.websocket("/v1/voice")
async def voice(ws: WebSocket):
    q = ws.query_params
    runtime = ws.app.state.runtime
    await ws.accept()
    ok, principal = await _authorized(ws)
    if not ok:                         # the access middleware sees HTTP only: check the key here
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
    meter = _Meter(ws.app.state, principal, runtime.catalog, session)
    try:
        with opened(meter.ctx):      # turns (tasks made in feed/commit) inherit it: admit()/report() land here
            await _converse(ws, session, meter, server_vad)
    except WebSocketDisconnect:
        pass
    finally:
        session.close()


async def _converse(ws: WebSocket, session: VoiceSession, meter: "_Meter", server_vad: bool) -> None:
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
        if end and await meter.admit(ws):
            await _answer(ws, session, meter)


async def _authorized(ws: WebSocket):
    """(allowed, the key's principal or None)."""
    platform = getattr(ws.app.state, "platform", None)
    if platform is None or not platform.auth:
        return True, None
    auth = ws.headers.get("authorization", "")
    token = auth[7:].strip() if auth.lower().startswith("bearer ") else ws.query_params.get("api_key")
    principal = await platform.store.run(platform.keys.verify, token) if token else None
    return principal is not None, principal


class _Meter:
    """A voice session's request context, its turns' RPM admissions and usage rows."""

    def __init__(self, state, principal, catalog, session: VoiceSession):
        self.platform = getattr(state, "platform", None)
        self.principal = principal
        self.ctx = RequestContext(principal=principal, limiter=None)
        self.specs = {name: catalog.resolve(name) for name in (session.model, session.transcriber, session.voice_model)}
        self.session = session

    async def admit(self, ws: WebSocket) -> bool:
        """One request of the key's RPM for the chat model; False (and an error event) when over it."""
        who = self.principal
        if self.platform is None or who is None or who.rpm is None:
            return True
        try:
            await self.platform.store.run(self.platform.limiter.admit, who, self.specs[self.session.model].id, 0)
        except RateLimitExceeded as e:
            self.session.clear()
            await ws.send_json({"type": "error", "error": {"message": str(e), "code": "rate_limit_exceeded",
                                                           "retry_after": round(e.retry_after, 1)}})
            return False
        return True

    async def turn_done(self, turn, latency_s: float) -> None:
        chat_usage, self.ctx.usage = self.ctx.usage, None
        if self.platform is None or not turn.user_text:
            return
        s = self.session
        rows = [(self.specs[s.transcriber], Usage.of(max(1, round(turn.audio_end / RATE)), 0)),
                (self.specs[s.model], chat_usage),
                (self.specs[s.voice_model], Usage.of(len(turn.text), 0))]
        key_id = self.principal.key_id if self.principal else None

        def write():
            with self.platform.store.write() as db:
                for spec, usage in rows:
                    record(db, spec=spec, usage=usage, endpoint=VOICE_ENDPOINT, status=200, key_id=key_id,
                           latency_s=latency_s)
        try:
            await self.platform.store.run(write)
        except Exception:
            log.exception("could not record voice usage")


async def _answer(ws: WebSocket, session: VoiceSession, meter: _Meter) -> None:
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
            await meter.turn_done(turn, time.monotonic() - t_end)
            await ws.send_json({"type": "response.done", "transcript": turn.user_text, "text": value, "timings_ms": {
                "transcript": _ms(turn, "transcript", t_end), "first_token": _ms(turn, "first_token", t_end),
                "first_audio_sent": None if first_audio is None else round((first_audio - t_end) * 1000, 1),
                "done": _ms(turn, "done", t_end)}})
