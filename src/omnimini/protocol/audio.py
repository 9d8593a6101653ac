"""Wire types of /v1/audio/speech (OpenAI's CreateSpeechRequest). Transcriptions are multipart
forms: their fields are read by the route (server/routes_audio.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from omnimini.protocol.common import WireModel

SpeechFormat = Literal["mp3", "opus", "aac", "flac", "wav", "pcm"]
TranscriptFormat = Literal["json", "text", "srt", "verbose_json", "vtt"]


class CustomVoice(WireModel):
    """OpenAI's `{"id": "voice_1234"}` form of `voice` (VoiceIdsOrCustomVoice): nothing else in it."""
    id: str


class SpeechRequest(WireModel):
    model: str
    input: Annotated[str, Field(min_length=1, max_length=4096)]
    voice: str | CustomVoice
    instructions: str | None = None          # steering a voice; Piper has no such control (ignored)
    response_format: SpeechFormat = "mp3"
    speed: Annotated[float, Field(ge=0.25, le=4.0)] = 1.0
    stream_format: Literal["audio", "sse"] = "audio"
