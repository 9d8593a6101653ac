"""OpenAI's audio routes: /v1/audio/transcriptions, /v1/audio/translations, /v1/audio/speech.

Transcription bodies are multipart forms, as OpenAI's; speech is streamed as Piper makes each
sentence. The models live in service/speech.py (runtime.speech).

Metered like the other model routes (server/access.py MODEL_ROUTES): each request is admitted under
the key's models and RPM (`admit`, no tokens reserved) and its usage row carries the units OpenAI
bills in prompt_tokens: whole seconds of audio in for transcription and translation (the `seconds`
of the response's usage), characters of `input` for speech (catalog.py's prices and billing_unit).
Admission is here, not in service/speech.py, because chat's input_audio parts use that too and
are billed as part of their chat request.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from starlette.datastructures import UploadFile

from omnimini.access.context import admit, report
from omnimini.engine.audio import CONTENT_TYPES
from omnimini.engine.speech import Transcript
from omnimini.protocol.audio import SpeechRequest
from omnimini.protocol.common import Usage
from omnimini.protocol.errors import InvalidRequest
from omnimini.service.media import IMAGE_PATHS
from omnimini.service.speech import Speech

router = APIRouter()

TRANSCRIPT_FORMATS = ("json", "text", "srt", "verbose_json", "vtt")
GRANULARITIES = ("segment", "word")
# Whisper's language names (openai/whisper tokenizer.py LANGUAGES), for verbose_json's `language`.
LANGUAGE_NAMES = {"en": "english", "de": "german", "fr": "french", "es": "spanish", "it": "italian",
                  "pt": "portuguese", "nl": "dutch", "ru": "russian", "zh": "chinese", "ja": "japanese",
                  "ko": "korean", "pl": "polish", "tr": "turkish", "sv": "swedish", "ar": "arabic",
                  "hi": "hindi", "uk": "ukrainian", "cs": "czech", "da": "danish", "fi": "finnish"}


def _speech(request: Request) -> Speech:
    return request.app.state.runtime.speech


async def _form(request: Request) -> tuple[bytes, dict[str, Any]]:
    ctype = request.headers.get("content-type", "")
    if not ctype.startswith("multipart/form-data"):
        raise InvalidRequest("Expected a multipart/form-data body with a 'file' field.", param="file")
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise InvalidRequest("you must provide a 'file' field (the audio, as a file upload)", param="file",
                             code="missing_required_parameter")
    data = await upload.read()
    fields: dict[str, Any] = {k: v for k, v in form.multi_items() if not isinstance(v, UploadFile)}
    fields["timestamp_granularities"] = form.getlist("timestamp_granularities[]") or form.getlist(
        "timestamp_granularities")
    return data, fields


def _ts(t: float, sep: str) -> str:
    ms = int(round(t * 1000))
    h, ms = divmod(ms, 3600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _srt(t: Transcript) -> str:
    return "".join(f"{i + 1}\n{_ts(s.start, ',')} --> {_ts(s.end, ',')}\n{s.text.strip()}\n\n"
                   for i, s in enumerate(t.segments))


def _vtt(t: Transcript) -> str:
    return "WEBVTT\n\n" + "".join(f"{_ts(s.start, '.')} --> {_ts(s.end, '.')}\n{s.text.strip()}\n\n"
                                  for s in t.segments)


async def _transcribe(request: Request, translate: bool):
    data, f = await _form(request)
    model = f.get("model")
    if not model:
        raise InvalidRequest("you must provide a model parameter", param="model",
                             code="missing_required_parameter")
    fmt = f.get("response_format") or "json"
    if fmt not in TRANSCRIPT_FORMATS:
        raise InvalidRequest(f"Invalid value for 'response_format': '{fmt}'. Supported values are: "
                             + ", ".join(TRANSCRIPT_FORMATS) + ".", param="response_format")
    grans = f["timestamp_granularities"]
    if set(grans) - set(GRANULARITIES):
        raise InvalidRequest(f"Invalid timestamp_granularities {grans}; use segment and/or word.",
                             param="timestamp_granularities")
    if grans and fmt != "verbose_json":
        raise InvalidRequest("timestamp_granularities requires response_format verbose_json.",
                             param="timestamp_granularities")
    if str(f.get("stream", "false")).lower() == "true":
        raise InvalidRequest("Streaming is not supported for Whisper models.", param="stream")
    try:
        temperature = float(f["temperature"]) if f.get("temperature") not in (None, "") else None
    except ValueError:
        raise InvalidRequest("'temperature' must be a number between 0 and 1.", param="temperature") from None
    if temperature is not None and not 0 <= temperature <= 1:
        raise InvalidRequest("'temperature' must be between 0 and 1.", param="temperature")
    language = f.get("language") or None
    if translate:
        language = None
    elif language is not None and (len(language) not in (2, 3) or not language.isalpha()):
        raise InvalidRequest(f"Invalid language '{language}'; use an ISO-639-1 code such as 'en'.",
                             param="language")
    speech = _speech(request)
    spec = request.app.state.runtime.catalog.resolve(model, kind="transcription")
    words = "word" in grans
    await admit(spec, 0, 0)                       # key's models, RPM (audio models have no TPM)
    t = await speech.transcribe(data, model, translate=translate, language=language,
                                prompt=f.get("prompt") or None, temperature=temperature,
                                word_timestamps=words,
                                # json and text carry no timestamps: a short clip can take Whisper's
                                # short-window path (engine/speech.py), about 4x faster on 2 cores
                                fast=fmt in ("json", "text") and not temperature)
    usage = {"type": "duration", "seconds": max(1, round(t.duration))}
    report(Usage.of(usage["seconds"], 0))         # the usage row: seconds billed (whisper-1 bills by the second)
    headers = {"openai-model": spec.id}
    if fmt == "text":
        return PlainTextResponse(t.text + "\n", headers=headers)
    if fmt == "srt":
        return PlainTextResponse(_srt(t), headers=headers)
    if fmt == "vtt":
        return PlainTextResponse(_vtt(t), media_type="text/vtt", headers=headers)
    if fmt == "json":
        return JSONResponse({"text": t.text, "usage": usage}, headers=headers)
    body: dict[str, Any] = {
        "task": "translate" if translate else "transcribe",
        "language": "english" if translate else LANGUAGE_NAMES.get(t.language, t.language),
        "duration": round(t.duration, 2), "text": t.text,
        "segments": [{"id": s.id, "seek": 0, "start": s.start, "end": s.end, "text": s.text,
                      "tokens": s.tokens, "temperature": s.temperature, "avg_logprob": s.avg_logprob,
                      "compression_ratio": s.compression_ratio, "no_speech_prob": s.no_speech_prob}
                     for s in t.segments],
        "usage": usage,
    }
    if words:
        body["words"] = [w for s in t.segments for w in s.words]
    return JSONResponse(body, headers=headers)


@router.post("/v1/audio/transcriptions")
async def transcriptions(request: Request):
    return await _transcribe(request, translate=False)


@router.post("/v1/audio/translations")
async def translations(request: Request):
    return await _transcribe(request, translate=True)


@router.post("/v1/audio/speech")
async def speech(req: SpeechRequest, request: Request):
    speech = _speech(request)
    spec = request.app.state.runtime.catalog.resolve(req.model, kind="speech")
    voice = req.voice if isinstance(req.voice, str) else req.voice.id
    speech.check_voice(voice)
    if not req.input.strip():
        raise InvalidRequest("'input' holds no text to speak.", param="input")
    await admit(spec, 0, 0)                # key's models, RPM
    await speech.piper(req.model)          # load (or fail) before the first byte
    report(Usage.of(len(req.input), 0))    # billed by the character of input, as tts-1
    chunks = speech.encoded(req.input, req.response_format, req.model, req.speed)
    headers = {"openai-model": spec.id}
    if req.stream_format == "sse":
        async def events():
            async for b in chunks:
                yield f"data: {json.dumps({'type': 'speech.audio.delta', 'audio': base64.b64encode(b).decode()})}\n\n"
            yield f"data: {json.dumps({'type': 'speech.audio.done', 'usage': {'input_tokens': 0, 'output_tokens': 0, 'total_tokens': 0}})}\n\n"
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)
    return StreamingResponse(chunks, media_type=CONTENT_TYPES[req.response_format], headers=headers)


IMAGE_INPUT_HEADER = b"x-omnimini-image-input"    # how image parts were read: "ocr" (docs/audio.md)


class ImageInputHeader:
    """Pure ASGI middleware: a list per request that service/media.py fills with the path each image
    took; a non-empty list becomes the `x-omnimini-image-input` response header."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        paths: list[str] = []
        token = IMAGE_PATHS.set(paths)

        async def send_with_path(message):
            if message["type"] == "http.response.start" and paths:
                message["headers"] = [*message.get("headers", []),
                                      (IMAGE_INPUT_HEADER, ",".join(dict.fromkeys(paths)).encode())]
            await send(message)
        try:
            await self.app(scope, receive, send_with_path)
        finally:
            IMAGE_PATHS.reset(token)


def install(app) -> None:
    """Called once by create_app: the audio routes, the voice socket, the image-path header."""
    from omnimini.server.routes_voice import router as voice_router
    app.include_router(router)
    app.include_router(voice_router)
    app.add_middleware(ImageInputHeader)
    # Audio reply ids go to the platform's store when there is one (it is installed after us).
    reply = getattr(app.state.runtime.chat, "audio_reply", None)
    if reply is not None:
        reply.transcripts.attach(lambda: getattr(getattr(app.state, "platform", None), "store", None))
