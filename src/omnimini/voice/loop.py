"""One voice conversation: audio in, end of speech, a spoken answer out while the model writes.

The answer of a turn is a pipeline of three models on the one chat pipeline (ChatService):
Whisper transcribes, the chat model streams tokens, each clause is handed to Piper as soon as it is
complete and its audio sent at once. Two things make the first audio byte early:

- streaming: the answer is spoken clause by clause (service/audio_reply.py's ClauseCutter, with a
  shorter first clause), not after the whole text exists;
- priority: the transcription and the first clause's synthesis are urgent work on the shared
  cores, and the chat model's decode loop waits for them between steps (engine/cpu.py);
- speculation: when the speaker has been quiet for SPECULATE_MS, the turn starts on the audio so
  far; if they speak again it is cancelled and started afresh, else it is already under way when the
  end of speech is confirmed (the "eager end of turn" of streaming voice agents). Its output is
  held back until then, so a cancelled guess is never heard.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import aclosing
from dataclasses import dataclass, field
from typing import AsyncIterator

import numpy as np

from omnimini.engine.audio import Encoder
from omnimini.protocol.chat import ChatCompletionRequest
from omnimini.protocol.errors import APIError
from omnimini.service.audio_reply import ClauseCutter
from omnimini.voice.vad import HANGOVER_MS, RATE, EnergyVAD

# Short answers suit speech, and a 135M model stays on topic for a sentence or two. (The output
# guard of the instruction hierarchy holds back only text that could still grow into a leak, so a
# longer `instructions` costs prefill time, not held-back audio.)
VOICE_INSTRUCTIONS = "Answer briefly, in one or two sentences."
VOICE_MAX_TOKENS = 60
TRANSCRIBER = "omnimini-transcribe"          # Whisper tiny.en: the fastest ear we have
VOICE_MODEL = "omnimini-tts"
FIRST_CLAUSE_MIN = 12                        # characters: the first clause may end at a comma this early
# The first clause is spoken after this many words (the rest follows while it plays). Each word
# costs about 13 ms of decoding and 8 ms of Piper on the path to the first audio byte; measured on
# 8 questions in-process (2 cores), 3 words gave a median first audio 25 ms earlier than 4.
FIRST_CLAUSE_WORDS = 3
TAIL_PAD = RATE // 20                        # 50 ms of the quiet after the last voiced frame go to Whisper


@dataclass
class Turn:
    """A running answer: events are queued as they happen and read by whoever speaks to the client."""

    audio_end: int                               # the voiced sample count it was started on
    events: asyncio.Queue = field(default_factory=asyncio.Queue)
    task: asyncio.Task | None = None
    marks: dict[str, float] = field(default_factory=dict)   # monotonic times: transcript, first_token, ...
    user_text: str = ""
    text: str = ""

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, time.monotonic())

    async def stream(self) -> AsyncIterator[tuple[str, object]]:
        """('transcript', str) ('text', str) ('audio', bytes: pcm16 24 kHz) ... ('done', str) or ('error', APIError)."""
        while True:
            kind, value = await self.events.get()
            yield kind, value
            if kind in ("done", "error"):
                return


class VoiceSession:
    def __init__(self, chat, speech, *, model: str = "omnimini-mini", instructions: str = VOICE_INSTRUCTIONS,
                 max_tokens: int = VOICE_MAX_TOKENS, hangover_ms: int = HANGOVER_MS, speculate: bool = True,
                 transcriber: str = TRANSCRIBER, voice_model: str = VOICE_MODEL, speed: float = 1.0):
        self.chat, self.speech = chat, speech
        self.model, self.instructions, self.max_tokens = model, instructions, max_tokens
        self.transcriber, self.voice_model, self.speed = transcriber, voice_model, speed
        self.speculate = speculate
        self.vad = EnergyVAD(hangover_ms)
        self.audio = np.zeros(0, np.float32)
        self.history: list[dict] = []
        self._guess: Turn | None = None

    # ------------------------------------------------------------------ input

    def feed(self, samples: np.ndarray) -> list[str]:
        """16 kHz float samples in; VAD events out. Starts (or cancels) a speculative turn."""
        self.audio = np.concatenate([self.audio, samples.astype(np.float32)])
        events = self.vad.feed(samples)
        st = self.vad.state
        if self._guess and st.last_voice > self._guess.audio_end:     # they spoke again: drop the guess
            self._cancel_guess()
        if self.speculate and "quiet" in events and self._guess is None:
            self._guess = self._start(st.last_voice)
        return events

    def commit(self) -> Turn:
        """End of speech (the VAD's, or the client's): the turn to play. Input is reset for the next."""
        end = self.vad.state.last_voice or len(self.audio)
        guess, self._guess = self._guess, None
        if guess is None or guess.audio_end != end:
            if guess:
                guess.task.cancel()
            guess = self._start(end)
        self.audio = np.zeros(0, np.float32)
        self.vad.reset()
        return guess

    def finish(self, turn: Turn) -> None:
        """The turn was played: it joins the conversation."""
        if turn.user_text:
            self.history += [{"role": "user", "content": turn.user_text},
                             {"role": "assistant", "content": turn.text}]

    def _cancel_guess(self) -> None:
        if self._guess and self._guess.task:
            self._guess.task.cancel()
        self._guess = None

    def clear(self) -> None:
        """Forget the audio of the current turn (and any guess made on it)."""
        self._cancel_guess()
        self.audio = np.zeros(0, np.float32)
        self.vad.reset()

    def close(self) -> None:
        self._cancel_guess()

    # ------------------------------------------------------------------ the answer

    def _start(self, end: int) -> Turn:
        turn = Turn(audio_end=end)
        clip = self.audio[: min(len(self.audio), end + TAIL_PAD)].copy()
        turn.task = asyncio.ensure_future(self._run(turn, clip))
        return turn

    async def _run(self, turn: Turn, clip: np.ndarray) -> None:
        put = turn.events.put_nowait
        speaker: asyncio.Task | None = None
        try:
            if clip.size < RATE // 10:
                turn.mark("transcript")
                put(("transcript", ""))
                put(("done", ""))
                return
            t = await self.speech.transcribe(clip, self.transcriber, fast=True, urgent=True)
            turn.user_text = t.text.strip()
            turn.mark("transcript")
            put(("transcript", turn.user_text))
            if not turn.user_text:
                put(("done", ""))
                return
            req = ChatCompletionRequest(
                model=self.model, stream=True, max_tokens=self.max_tokens,
                messages=[{"role": "system", "content": self.instructions}, *self.history,
                          {"role": "user", "content": turn.user_text}])
            prepared = await self.chat.prepare(req)
            clauses: asyncio.Queue[str | None] = asyncio.Queue()
            speaker = asyncio.ensure_future(self._speak(turn, clauses))
            cutter = ClauseCutter(first_min=FIRST_CLAUSE_MIN, first_words=FIRST_CLAUSE_WORDS)
            async with aclosing(self.chat.stream(prepared)) as chunks:
                async for chunk in chunks:
                    for ch in chunk.choices:
                        if ch.delta.content and ch.delta.role is None:
                            turn.mark("first_token")
                            turn.text += ch.delta.content
                            put(("text", ch.delta.content))
                            for clause in cutter.feed(ch.delta.content):
                                turn.mark("first_clause")
                                clauses.put_nowait(clause)
            turn.mark("last_token")
            for clause in cutter.finish():
                clauses.put_nowait(clause)
            clauses.put_nowait(None)
            await speaker
            turn.mark("done")
            put(("done", turn.text))
        except APIError as e:
            put(("error", e))
        except asyncio.CancelledError:
            if speaker:
                speaker.cancel()
            raise
        finally:
            if speaker and not speaker.done():
                speaker.cancel()

    async def _speak(self, turn: Turn, clauses: asyncio.Queue) -> None:
        piper = await self.speech.piper(self.voice_model)
        enc = Encoder("pcm", piper.rate)
        first = True
        while (clause := await clauses.get()) is not None:
            # The first clause is what the listener waits on: the chat model holds off while it is
            # synthesised (engine/cpu.py). Later clauses have the first one's playing time to spare.
            async for pcm in self.speech.pcm_sentences(clause, self.voice_model, self.speed, urgent=first):
                data = enc.feed(pcm)
                if data:
                    turn.mark("first_audio")
                    turn.events.put_nowait(("audio", data))
            first = False
        tail = enc.close()
        if tail:
            turn.events.put_nowait(("audio", tail))
