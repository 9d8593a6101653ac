"""The voice loop's WebSocket: `ws://HOST/v1/voice` (protocol in docs/audio.md).

Client -> server: binary frames of 16-bit little-endian mono PCM at 16 kHz (any length); text
frames `{"type": "input_audio_buffer.commit"}` (end of speech now, as push-to-talk or a
client-side VAD decides), `{"type": "input_audio_buffer.clear"}` or `{"type": "response.cancel"}`.
Server -> client: text frames `session.created`, `speech_started`, `speech_stopped`, `transcript`,
`text.delta`, `response.done` (`status` "completed" with timings from the end of speech, or
"cancelled") or `error`; binary frames of the answer's audio, 16-bit mono PCM at 24 kHz, sent as
each clause is synthesised.
Query parameters: model, instructions, max_tokens, vad (server|none), hangover_ms, speculate (1|0),
interrupt (1|0).

Barge-in: the socket keeps listening while an answer is on its way. With `interrupt=1` (the
default, as OpenAI's Realtime API's `interrupt_response`), speech that starts during an answer
cancels it: generation and synthesis stop, `response.done` says `"status": "cancelled"`, and the
text generated so far joins the conversation. `response.cancel` does the same on the client's word,
and a new commit cancels an answer still running. The client stops its own playback. It should
cancel its speaker's echo (browsers do with `echoCancellation`), or the answer interrupts itself.

Metering: each answered turn writes three usage rows on endpoint VOICE_ENDPOINT (the transcriber's
seconds, the chat model's tokens, the voice's characters: the units and prices of the HTTP routes)
and counts as one request against the key's RPM for the chat model, admitted when the turn is
committed. Speculative turns run under the session's request context without a limiter (a
cancelled guess costs no request); the key's model list applies to them as to any chat request.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass

import numpy as np
from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from omnimini.access.context import RequestContext, opened
from omnimini.engine.audio import OUTPUT_RATE
from omnimini.metering.usage import record
from omnimini.protocol.common import Usage
from omnimini.protocol.errors import APIError, RateLimitExceeded
from omnimini.voice.loop import VOICE_INSTRUCTIONS, VOICE_MAX_TOKENS, Turn, VoiceSession
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
        interrupt = q.get("interrupt", "1") != "0"
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
            await _converse(ws, session, meter, server_vad, interrupt)
    except WebSocketDisconnect:
        pass
    finally:
        session.close()


class _Out:
    """The socket's sends, one message at a time: the answer task and the receive loop both send."""

    def __init__(self, ws: WebSocket):
        self.ws, self.lock = ws, asyncio.Lock()

    async def json(self, obj: dict) -> None:
        async with self.lock:
            await self.ws.send_json(obj)

    async def bytes(self, data: bytes) -> None:
        async with self.lock:
            await self.ws.send_bytes(data)


async def _converse(ws: WebSocket, session: VoiceSession, meter: "_Meter", server_vad: bool,
                    interrupt: bool) -> None:
    out = _Out(ws)
    playing: _Playing | None = None     # the answer being sent, while the socket listens on

    async def cut(reason: str) -> None:
        if playing is not None and not playing.task.done():
            await _cancel(out, session, meter, playing, reason)

    try:
        while True:
            msg = await ws.receive()
            if msg["type"] == "websocket.disconnect":
                break
            end = False
            if msg.get("bytes") is not None:
                data = msg["bytes"]
                if len(data) > MAX_FRAME_BYTES or len(data) % 2:
                    await out.json({"type": "error", "error": {"message": "audio frames are 16-bit PCM, "
                                                               f"at most {MAX_FRAME_BYTES} bytes"}})
                    continue
                events = session.feed(np.frombuffer(data, "<i2").astype(np.float32) / 32768)
                for ev in events:
                    if ev in ("speech_started", "speech_stopped"):
                        await out.json({"type": ev})
                if interrupt and "speech_started" in events:
                    await cut("speech_started")            # barge-in: they talk over the answer
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
                elif kind == "response.cancel":
                    await cut("client")
                else:
                    await out.json({"type": "error", "error": {"message": f"unknown event {kind!r}"}})
            if end and await meter.admit(out):
                await cut("new_turn")
                t_end, turn = time.monotonic(), session.commit()
                playing = _Playing(asyncio.create_task(_answer(out, session, meter, turn, t_end)), turn, t_end)
    finally:
        if playing is not None and not playing.task.done():
            playing.task.cancel()
            await asyncio.gather(playing.task, return_exceptions=True)


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

    async def admit(self, out: _Out) -> bool:
        """One request of the key's RPM for the chat model; False (and an error event) when over it."""
        who = self.principal
        if self.platform is None or who is None or who.rpm is None:
            return True
        try:
            await self.platform.store.run(self.platform.limiter.admit, who, self.specs[self.session.model].id, 0)
        except RateLimitExceeded as e:
            self.session.clear()
            await out.json({"type": "error", "error": {"message": str(e), "code": "rate_limit_exceeded",
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


@dataclass
class _Playing:
    task: asyncio.Task          # _answer, sending the turn's events
    turn: Turn
    t_end: float                # when the end of speech was known


async def _cancel(out: _Out, session: VoiceSession, meter: _Meter, playing: _Playing, reason: str) -> None:
    """Stop the answer being sent: its task, the turn's generation and synthesis. What was
    generated so far joins the conversation and is billed."""
    turn = playing.turn
    playing.task.cancel()
    await asyncio.gather(playing.task, return_exceptions=True)
    if turn.task is not None:
        turn.task.cancel()
        await asyncio.gather(turn.task, return_exceptions=True)   # the chat stream reports its usage
    session.finish(turn)
    await meter.turn_done(turn, time.monotonic() - playing.t_end)
    await out.json({"type": "response.done", "status": "cancelled", "reason": reason,
                    "transcript": turn.user_text, "text": turn.text})


async def _answer(out: _Out, session: VoiceSession, meter: _Meter, turn: Turn, t_end: float) -> None:
    first_audio = None
    async for kind, value in turn.stream():
        if kind == "audio":
            await out.bytes(value)
            if first_audio is None:
                first_audio = time.monotonic()
        elif kind == "transcript":
            await out.json({"type": "transcript", "text": value})
        elif kind == "text":
            await out.json({"type": "text.delta", "delta": value})
        elif kind == "error":
            await out.json({"type": "error", "error": {"message": str(value), "param": value.param}})
        elif kind == "done":
            session.finish(turn)
            await meter.turn_done(turn, time.monotonic() - t_end)
            await out.json({"type": "response.done", "status": "completed", "transcript": turn.user_text,
                            "text": value, "timings_ms": {
                "transcript": _ms(turn, "transcript", t_end), "first_token": _ms(turn, "first_token", t_end),
                "first_audio_sent": None if first_audio is None else round((first_audio - t_end) * 1000, 1),
                "done": _ms(turn, "done", t_end)}})
