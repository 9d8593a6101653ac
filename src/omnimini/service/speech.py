"""Speech for every face: transcribe uploads, synthesise text, load the models once.

The HTTP routes (server/routes_audio.py), chat's `input_audio` parts and audio replies, and the
voice loop all come here. Blocking model work runs in worker threads so the event loop (and
llama.cpp's token stream) keeps moving.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import AsyncIterator

import numpy as np

from omnimini.engine.audio import BadAudio, Encoder, decode
from omnimini.engine.cpu import GATE
from omnimini.engine.speech import Piper, Transcript, Whisper, whisper_dir
from omnimini.models.catalog import SPEECH_ALIASES, TRANSCRIBE_ALIAS, Catalog
from omnimini.models.weights import WeightsNotFound, locate
from omnimini.protocol.errors import InvalidRequest, ServerError

# OpenAI's voice names (platform.openai.com/docs/guides/text-to-speech#voice-options). We ship one
# Piper voice: every name is accepted and spoken by it, so that clients written for OpenAI work.
OPENAI_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage",
                 "shimmer", "verse", "marin", "cedar")
PIPER_VOICES = ("joe",)
VOICES = OPENAI_VOICES + PIPER_VOICES
MAX_SPEECH_INPUT = 4096          # OpenAI's limit on `input` of /v1/audio/speech, in characters
SPEED_RANGE = (0.25, 4.0)        # OpenAI's range for `speed`

DEFAULT_TRANSCRIBER = TRANSCRIBE_ALIAS     # English, fast: chat audio and the voice loop
DEFAULT_VOICE_MODEL = SPEECH_ALIASES[0]


class Speech:
    def __init__(self, catalog: Catalog, data_dir: Path, threads: int = 2):
        self.catalog = catalog
        self.cache = data_dir / "models"
        self.threads = threads
        self._models: dict[str, Whisper | Piper] = {}
        self._lock = asyncio.Lock()

    async def _load(self, name: str, kind: str):
        spec = self.catalog.resolve(name, kind=kind)
        if spec.id in self._models:
            return self._models[spec.id]
        async with self._lock:
            if spec.id not in self._models:
                def load():
                    if kind == "transcription":
                        return Whisper(whisper_dir(spec.source, self.cache), self.threads)
                    return Piper(locate(spec.source, self.cache), self.threads)
                try:
                    self._models[spec.id] = await asyncio.to_thread(load)
                except WeightsNotFound as e:
                    raise ServerError(f"The weights of model `{spec.id}` are not available: {e}",
                                      code="model_unavailable") from e
        return self._models[spec.id]

    async def whisper(self, name: str = DEFAULT_TRANSCRIBER) -> Whisper:
        return await self._load(name, "transcription")

    async def piper(self, name: str = DEFAULT_VOICE_MODEL) -> Piper:
        return await self._load(name, "speech")

    async def decode(self, data: bytes, param: str = "file") -> np.ndarray:
        try:
            return await asyncio.to_thread(decode, data)
        except BadAudio as e:
            raise InvalidRequest(f"Invalid audio: {e}. Supported: any format ffmpeg reads (flac, m4a, "
                                 "mp3, mp4, mpeg, mpga, oga, ogg, wav, webm).", param=param,
                                 code="invalid_audio") from e

    async def transcribe(self, data: bytes | np.ndarray, model: str = DEFAULT_TRANSCRIBER, *,
                         param: str = "file", translate: bool = False, urgent: bool = False,
                         **options) -> Transcript:
        """urgent: someone is waiting on this now (the voice loop); the chat models' decoding holds
        off while it runs (engine/cpu.py)."""
        whisper = await self.whisper(model)
        if translate and not whisper.multilingual:
            raise InvalidRequest(f"The model `{model}` is English-only and cannot translate; use "
                                 "`whisper-1` (Whisper base, multilingual).", param="model")
        audio = data if isinstance(data, np.ndarray) else await self.decode(data, param)
        return await asyncio.to_thread(_maybe_urgent(urgent, whisper.transcribe), audio,
                                       translate=translate, **options)

    @staticmethod
    def check_voice(voice: str, param: str = "voice") -> None:
        if voice not in VOICES:
            raise InvalidRequest(f"Invalid value for 'voice': '{voice}'. Supported values are: "
                                 + ", ".join(f"'{v}'" for v in VOICES) + ".", param=param)

    async def pcm_sentences(self, text: str, model: str = DEFAULT_VOICE_MODEL,
                            speed: float = 1.0, urgent: bool = False) -> AsyncIterator[np.ndarray]:
        """int16 samples at the voice's rate, one array per sentence, each as soon as it is made.
        urgent: as for transcribe."""
        piper = await self.piper(model)
        it = piper.sentences(text, speed)
        step = _maybe_urgent(urgent, next)
        while True:
            pcm = await asyncio.to_thread(step, it, None)
            if pcm is None:
                return
            yield pcm

    async def encoded(self, text: str, fmt: str, model: str = DEFAULT_VOICE_MODEL,
                      speed: float = 1.0) -> AsyncIterator[bytes]:
        piper = await self.piper(model)
        enc = Encoder(fmt, piper.rate)
        async for pcm in self.pcm_sentences(text, model, speed):
            out = enc.feed(pcm)
            if out:
                yield out
        tail = enc.close()
        if tail:
            yield tail


def _maybe_urgent(urgent: bool, fn):
    """fn, run as urgent work on the shared cores when asked (engine/cpu.py)."""
    if not urgent:
        return fn

    def run(*args, **kwargs):
        with GATE.urgent():
            return fn(*args, **kwargs)
    return run
