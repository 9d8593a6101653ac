"""Spoken replies: `modalities: ["text", "audio"]` with `audio: {voice, format}` on chat completions.

As OpenAI's: the message carries `audio: {id, data (base64), transcript, expires_at}` and `content`
null; a stream carries `delta.audio` objects with `transcript` fragments and base64 `data` chunks,
then one with `expires_at`. Speech is made clause by clause while the model is still writing
(the same cutting as the voice loop), so the first audio leaves before the text is finished.
"""

from __future__ import annotations

import asyncio
import base64
import re
import time
from collections import OrderedDict
from typing import AsyncIterator

from omnimini.engine.audio import Encoder
from omnimini.protocol.chat import ChatCompletion, ChatCompletionChunk, ChunkChoice, Delta
from omnimini.protocol.errors import InvalidRequest
from omnimini.service.ids import new_id
from omnimini.service.speech import Speech

# OpenAI's chat audio formats (CreateChatCompletionRequest.audio.format); pcm16 is raw 24 kHz.
CHAT_AUDIO_FORMATS = {"wav": "wav", "mp3": "mp3", "flac": "flac", "opus": "opus", "aac": "aac", "pcm16": "pcm"}
AUDIO_TTL = 3600                 # seconds an audio id stays usable in a follow-up turn (expires_at)
MAX_REMEMBERED = 1000            # audio ids kept in memory (transcripts only, a few KB)
# A clause ends at sentence punctuation, or at a comma/semicolon/colon once it is long enough to be
# worth a synthesis call (Piper pays ~50 ms per call; very short clauses sound choppy).
CLAUSE_END = re.compile(r"[.!?](?=\s)|[.!?]$|\n")
SOFT_END = re.compile(r"[,;:](?=\s)")
MIN_SOFT_CLAUSE = 24             # characters before a comma may end a clause
MAX_CLAUSE = 160                 # cut at the last space beyond this, so no clause waits forever


def wants_audio(req) -> bool:
    return bool(req.modalities and "audio" in req.modalities)


def check_audio_request(req) -> None:
    """The 400s of OpenAI's audio output parameters (called from ChatService's checks)."""
    if req.modalities and set(req.modalities) - {"text", "audio"}:
        raise InvalidRequest(f"Invalid modalities {req.modalities}; supported: 'text', 'audio'.",
                             param="modalities")
    if not wants_audio(req):
        if req.audio is not None:
            raise InvalidRequest("'audio' requires modalities ['text', 'audio'].", param="audio")
        return
    if not req.audio:
        raise InvalidRequest("Audio output requires the 'audio' parameter ({voice, format}).", param="audio")
    extra = set(req.audio) - {"voice", "format"}
    if extra:
        raise InvalidRequest(f"Unknown audio parameters {sorted(extra)}.", param="audio")
    Speech.check_voice(str(req.audio.get("voice")), param="audio.voice")
    if req.audio.get("format") not in CHAT_AUDIO_FORMATS:
        raise InvalidRequest(f"Invalid audio.format {req.audio.get('format')!r}; supported: "
                             + ", ".join(CHAT_AUDIO_FORMATS) + ".", param="audio.format")
    if req.tools and req.tool_choice != "none":
        raise InvalidRequest("Audio output cannot be combined with tool calls here.", param="modalities")


class ClauseCutter:
    """Text in as it streams, complete clauses out."""

    def __init__(self, first_min: int = MIN_SOFT_CLAUSE, first_words: int = 0) -> None:
        self.buf = ""
        self.min = first_min          # the first clause may be cut earlier: it sets the latency
        self.first_words = first_words   # and, if > 0, after this many words even without punctuation

    def feed(self, text: str) -> list[str]:
        self.buf += text
        out = []
        while True:
            m = CLAUSE_END.search(self.buf)
            soft = SOFT_END.search(self.buf, self.min)
            cut = min([x.end() for x in (m, soft) if x], default=None)
            if cut is None and len(self.buf) > MAX_CLAUSE and " " in self.buf[MAX_CLAUSE // 2:]:
                cut = self.buf.rindex(" ")
            if cut is None and self.first_words and len(self.buf.split()) > self.first_words:
                cut = self.buf.rstrip().rindex(" ")      # the first clause: a few words are enough
            if cut is None:
                return out
            clause, self.buf = self.buf[:cut].strip(), self.buf[cut:]
            if clause:
                out.append(clause)
                self.min, self.first_words = MIN_SOFT_CLAUSE, 0

    def finish(self) -> list[str]:
        rest, self.buf = self.buf.strip(), ""
        return [rest] if rest else []


class Transcripts:
    """Audio reply id -> transcript, for clients that send `{"role": "assistant", "audio": {"id"}}` back.

    Recent ids are kept in memory; with a store attached (`attach`, done by the server when it has
    one) every id is also written there (service/audio_ids.py), so it outlives a restart and is
    seen by other servers on the same database until it expires."""

    def __init__(self) -> None:
        self._d: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._store = lambda: None

    def attach(self, store_of) -> None:
        """`store_of()` gives the store to keep ids in, or None (called at each use: the server's
        platform may be set up after the runtime)."""
        self._store = store_of

    def put(self, audio_id: str, text: str) -> int:
        expires = int(time.time()) + AUDIO_TTL
        self._d[audio_id] = (expires, text)
        while len(self._d) > MAX_REMEMBERED:
            self._d.popitem(last=False)
        store = self._store()
        if store is not None:
            from omnimini.service.audio_ids import save
            save(store, audio_id, text, expires)
        return expires

    def get(self, audio_id: str) -> str | None:
        hit = self._d.get(audio_id)
        if hit:
            return hit[1] if hit[0] > time.time() else None
        store = self._store()
        if store is None:
            return None
        from omnimini.service.audio_ids import load
        return load(store, audio_id)


class AudioReply:
    def __init__(self, speech: Speech):
        self.speech = speech
        self.transcripts = Transcripts()

    async def speak(self, text: str, fmt: str) -> bytes:
        return b"".join([b async for b in self.speech.encoded(text, CHAT_AUDIO_FORMATS[fmt])])

    async def complete(self, req, completion: ChatCompletion) -> ChatCompletion:
        fmt = req.audio["format"]
        for choice in completion.choices:
            text = choice.message.content or ""
            audio_id = new_id("audio_")
            data = await self.speak(text, fmt) if text.strip() else b""
            choice.message.audio = {"id": audio_id, "data": base64.b64encode(data).decode(),
                                    "expires_at": self.transcripts.put(audio_id, text), "transcript": text}
            choice.message.content = None
        return completion

    async def stream(self, req, chunks: AsyncIterator[ChatCompletionChunk]) -> AsyncIterator[ChatCompletionChunk]:
        """Text deltas become `audio.transcript` deltas; each finished clause is synthesised in the
        background and its audio sent as a `delta.audio.data` chunk as soon as it is ready."""
        fmt = CHAT_AUDIO_FORMATS[req.audio["format"]]
        piper = await self.speech.piper()
        state: dict[int, dict] = {}

        def st(i: int) -> dict:
            if i not in state:
                state[i] = {"id": new_id("audio_"), "cut": ClauseCutter(), "enc": Encoder(fmt, piper.rate),
                            "pending": [], "text": ""}
            return state[i]

        async def synth(s: dict, clause: str) -> bytes:
            out = b""
            async for pcm in self.speech.pcm_sentences(clause):
                out += s["enc"].feed(pcm)
            return out

        def audio_chunk(template: ChatCompletionChunk, i: int, audio: dict) -> ChatCompletionChunk:
            return template.model_copy(update={"choices": [ChunkChoice(index=i, delta=Delta(audio=audio))],
                                               "usage": None})

        async def ready(template, i: int, wait: bool):
            s = st(i)
            while s["pending"] and (wait or s["pending"][0].done()):
                data = await s["pending"].pop(0)
                if data:
                    yield audio_chunk(template, i, {"id": s["id"], "data": base64.b64encode(data).decode()})

        async for c in chunks:
            for ch in c.choices:
                s, d = st(ch.index), ch.delta
                if d.content is not None and d.role is None:     # a text delta: transcript + clauses
                    s["text"] += d.content
                    ch.delta = Delta(audio={"id": s["id"], "transcript": d.content})
                    for clause in s["cut"].feed(d.content):
                        prev = s["pending"][-1] if s["pending"] else None
                        s["pending"].append(asyncio.ensure_future(self._after(prev, synth(s, clause))))
                elif d.role is not None:
                    ch.delta = Delta(role="assistant", content=None, refusal=None)
                if ch.finish_reason is not None:               # flush this choice's audio first
                    for clause in s["cut"].finish():
                        prev = s["pending"][-1] if s["pending"] else None
                        s["pending"].append(asyncio.ensure_future(self._after(prev, synth(s, clause))))
                    async for a in ready(c, ch.index, wait=True):
                        yield a
                    tail = s["enc"].close()
                    if tail:
                        yield audio_chunk(c, ch.index, {"id": s["id"], "data": base64.b64encode(tail).decode()})
                    yield audio_chunk(c, ch.index, {"id": s["id"],
                                                    "expires_at": self.transcripts.put(s["id"], s["text"])})
            yield c
            for i in list(state):
                async for a in ready(c, i, wait=False):
                    yield a

    @staticmethod
    async def _after(prev, coro):
        """Clauses are synthesised in order (one encoder per choice)."""
        if prev is not None:
            await asyncio.shield(prev)
        return await coro
