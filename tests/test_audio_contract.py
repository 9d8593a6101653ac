"""/v1/audio/* against OpenAI's OpenAPI description (tests/openapi_contract.py, ../shared's spec):
the raw JSON of transcriptions (json, verbose_json with segments and words) and translations (json,
verbose_json), the speech route's request body (every property the spec defines is accepted, what
the spec forbids is a 400) and its SSE events.

Each response is checked against its own component: the path's `oneOf` of Json / DiarizedJson /
VerboseJson cannot hold for any real body, since a verbose body is also a valid plain one.

Loads Whisper and Piper on the session server: run under the shared lock
    flock /tmp/omnimini-llama.lock .venv/bin/python -m pytest tests/test_audio_contract.py -x -q
"""

from __future__ import annotations

import json

import pytest

import openapi_contract as oc
from omnimini.protocol.audio import SpeechRequest
from openapi_contract import errors, validate

pytestmark = pytest.mark.skipif(not oc.SPEC_PATH.is_file(), reason=f"OpenAPI spec not found at {oc.SPEC_PATH}")

SENTENCE = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def wav(http) -> bytes:
    r = http.post("/audio/speech", json={"model": "tts-1", "voice": "alloy", "input": SENTENCE,
                                         "response_format": "wav"})
    assert r.status_code == 200, r.text
    return r.content


def post_audio(http, path: str, wav: bytes, **fields) -> dict:
    r = http.post(path, files={"file": ("fox.wav", wav, "audio/wav")}, data=fields)   # a list: repeated fields
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    return r.json()


def test_transcription_json(http, wav):
    body = post_audio(http, "/audio/transcriptions", wav, model="omnimini-transcribe")
    validate(body, "CreateTranscriptionResponseJson")
    validate(body["usage"], "TranscriptTextUsageDuration")
    assert "fox" in body["text"].lower()


def test_transcription_verbose_json(http, wav):
    body = post_audio(http, "/audio/transcriptions", wav, model="omnimini-transcribe",
                      response_format="verbose_json", **{"timestamp_granularities[]": ["segment", "word"]})
    validate(body, "CreateTranscriptionResponseVerboseJson")
    assert body["segments"] and body["words"]          # both present, so their item schemas were applied
    for seg in body["segments"]:
        validate(seg, "TranscriptionSegment")
    for word in body["words"]:
        validate(word, "TranscriptionWord")
    assert body["language"] == "english" and body["duration"] > 1


def test_translation_json_and_verbose_json(http, wav):
    plain = post_audio(http, "/audio/translations", wav, model="whisper-1")
    validate(plain, "CreateTranslationResponseJson")
    verbose = post_audio(http, "/audio/translations", wav, model="whisper-1", response_format="verbose_json")
    validate(verbose, "CreateTranslationResponseVerboseJson")
    assert verbose["language"] == "english" and verbose["segments"]
    for seg in verbose["segments"]:
        validate(seg, "TranscriptionSegment")


def test_the_validator_catches_a_broken_transcription(http, wav):
    body = post_audio(http, "/audio/transcriptions", wav, model="omnimini-transcribe", response_format="verbose_json")
    broken = {**body, "segments": [{**body["segments"][0], "tokens": "not a list"}]}
    assert errors(broken, "CreateTranscriptionResponseVerboseJson")
    assert errors({k: v for k, v in body.items() if k != "duration"}, "CreateTranscriptionResponseVerboseJson")


def test_speech_request_body_matches_the_spec(http):
    spec_props = set(oc.schema("CreateSpeechRequest")["properties"])
    assert set(SpeechRequest.model_fields) == spec_props        # no property missing, none invented
    full = {"model": "tts-1", "input": "Hello there.", "voice": "coral", "instructions": "Speak calmly.",
            "response_format": "wav", "speed": 1.25, "stream_format": "audio"}
    validate(full, "CreateSpeechRequest")
    r = http.post("/audio/speech", json=full)
    assert r.status_code == 200 and r.content[:4] == b"RIFF"
    custom = {"model": "tts-1", "input": "Hi.", "voice": {"id": "alloy"}, "response_format": "pcm"}
    validate(custom, "CreateSpeechRequest")                     # a custom voice object, as the spec allows
    assert http.post("/audio/speech", json=custom).status_code == 200
    base = {"model": "tts-1", "input": "Hi.", "voice": "alloy"}
    for bad in ({**base, "volume": 11}, {**base, "input": "x" * 4097}, {**base, "speed": 4.5},
                {**base, "response_format": "ogg"}, {**base, "stream_format": "chunks"},
                {"model": "tts-1", "voice": "alloy"}, {**base, "voice": {"id": "alloy", "pitch": 2}}):
        assert errors(bad, "CreateSpeechRequest"), bad              # the spec forbids it...
        r = http.post("/audio/speech", json=bad)
        assert r.status_code == 400, (bad, r.text)                  # ...and so do we, in OpenAI's envelope
        validate(r.json(), "ErrorResponse")


def test_speech_sse_events(http):
    r = http.post("/audio/speech", json={"model": "tts-1", "input": "One. Two.", "voice": "alloy",
                                         "response_format": "pcm", "stream_format": "sse"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events][-1] == "speech.audio.done" and len(events) >= 2
    for e in events:
        validate(e, "CreateSpeechResponseStreamEvent")
