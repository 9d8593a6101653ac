"""Chat completions with audio in (input_audio), audio out (modalities ["text","audio"]) and images
(image_url read by OCR), through the official openai SDK against the live server."""

from __future__ import annotations

import base64
import difflib
import http.server
import io
import json
import re
import threading

import numpy as np
import openai
import pytest
from PIL import Image, ImageDraw, ImageFont

QUESTION = "What is the capital of France?"


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def similar(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, words(a), words(b)).ratio()


@pytest.fixture(scope="module")
def question_wav(client) -> bytes:
    return client.audio.speech.create(model="tts-1", voice="alloy", input=QUESTION, response_format="wav").content


def audio_message(wav: bytes, fmt: str = "wav") -> dict:
    return {"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": base64.b64encode(wav).decode(), "format": fmt}}]}


def test_input_audio_enters_as_the_users_words(client, question_wav):
    spoken = client.chat.completions.create(model="omnimini-mini", max_tokens=8, temperature=0,
                                            messages=[audio_message(question_wav)])
    typed = client.chat.completions.create(model="omnimini-mini", max_tokens=8, temperature=0,
                                           messages=[{"role": "user", "content": QUESTION}])
    # The transcript is exactly the question: same prompt, so the same greedy answer.
    assert spoken.usage.prompt_tokens == typed.usage.prompt_tokens
    assert spoken.choices[0].message.content == typed.choices[0].message.content


def test_input_audio_mp3_next_to_text(client):
    sentence = "The weather is nice today."
    mp3 = client.audio.speech.create(model="tts-1", voice="alloy", input=sentence, response_format="mp3").content
    msg = audio_message(mp3, "mp3")
    msg["content"].insert(0, {"type": "text", "text": "Repeat what I say:"})
    r = client.chat.completions.create(model="omnimini-mini", max_tokens=5, messages=[msg])
    typed = client.chat.completions.create(model="omnimini-mini", max_tokens=5, messages=[
        {"role": "user", "content": "Repeat what I say:\n" + sentence}])
    # The text part and the transcript are both in the message (Whisper may drop the full stop).
    assert abs(r.usage.prompt_tokens - typed.usage.prompt_tokens) <= 1


def test_audio_output_speaks_the_transcript(client):
    r = client.chat.completions.create(
        model="omnimini-mini", modalities=["text", "audio"], audio={"voice": "alloy", "format": "wav"},
        max_tokens=40, temperature=0, messages=[{"role": "user", "content": "Say hello and tell me your name."}])
    m = r.choices[0].message
    assert m.content is None and m.audio.id.startswith("audio_") and m.audio.expires_at > r.created
    assert m.audio.transcript.strip()
    wav = base64.b64decode(m.audio.data)
    assert wav.startswith(b"RIFF")
    heard = client.audio.transcriptions.create(model="omnimini-transcribe", file=("a.wav", wav)).text
    assert similar(heard, m.audio.transcript) > 0.7, (heard, m.audio.transcript)
    # The reply can be sent back by id, as OpenAI's multi-turn audio conversations do.
    again = client.chat.completions.create(model="omnimini-mini", max_tokens=5, messages=[
        {"role": "user", "content": "Say hello and tell me your name."},
        {"role": "assistant", "audio": {"id": m.audio.id}},
        {"role": "user", "content": "Thanks."}])
    assert again.choices[0].finish_reason in ("stop", "length")


def test_streamed_audio_output(client):
    stream = client.chat.completions.create(
        model="omnimini-mini", modalities=["text", "audio"], audio={"voice": "echo", "format": "pcm16"},
        stream=True, max_tokens=40, temperature=0,
        messages=[{"role": "user", "content": "Tell me one fact about the sea, in one sentence."}])
    transcript, pcm, expires, ids, order = "", b"", None, set(), []
    for chunk in stream:
        for ch in chunk.choices:
            audio = getattr(ch.delta, "audio", None) or (ch.delta.model_extra or {}).get("audio")
            assert not ch.delta.content
            if audio:
                audio = audio if isinstance(audio, dict) else audio.model_dump()
                ids.add(audio["id"])
                transcript += audio.get("transcript") or ""
                if audio.get("data"):
                    pcm += base64.b64decode(audio["data"])
                    order.append("data")
                if audio.get("expires_at"):
                    expires = audio["expires_at"]
                    order.append("expires")
            if ch.finish_reason:
                order.append("finish")
    assert len(ids) == 1 and expires and transcript.strip()
    assert order[-2:] == ["expires", "finish"] and "data" in order
    wav = b"RIFF" + (36 + len(pcm)).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little") + \
        bytes.fromhex("01000100c05d0000" "80bb0000" "02001000") + b"data" + len(pcm).to_bytes(4, "little") + pcm
    heard = client.audio.transcriptions.create(model="omnimini-transcribe", file=("s.wav", wav)).text
    assert similar(heard, transcript) > 0.7, (heard, transcript)


def test_bad_audio_in_chat_is_a_400(client):
    cases = [
        ({"data": base64.b64encode(b"not audio" * 100).decode(), "format": "wav"}, "content[0].input_audio.data"),
        ({"data": "%%%not-base64", "format": "wav"}, "content[0].input_audio.data"),
        ({"data": "", "format": "wav"}, "content[0].input_audio.data"),
        ({"data": "AAAA", "format": "midi"}, "content[0].input_audio.format"),
    ]
    for part, param in cases:
        with pytest.raises(openai.BadRequestError) as e:
            client.chat.completions.create(model="omnimini-mini", messages=[
                {"role": "user", "content": [{"type": "input_audio", "input_audio": part}]}])
        assert e.value.body["param"] == f"messages[0].{param}", e.value.body
    for audio, param in [({"voice": "robot", "format": "wav"}, "audio.voice"),
                         ({"voice": "alloy", "format": "ogg"}, "audio.format"), (None, "audio")]:
        with pytest.raises(openai.BadRequestError) as e:
            client.chat.completions.create(model="omnimini-mini", modalities=["text", "audio"],
                                           **({"audio": audio} if audio else {}),
                                           messages=[{"role": "user", "content": "hi"}])
        assert e.value.body["param"] == param


# ---------------------------------------------------------------- images

RECEIPT = ["HARBOR BAKERY", "12 Quay Street", "", "Sourdough        6.50", "Croissant        3.25",
           "Coffee           2.75", "", "TOTAL           12.50"]


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def receipt_png() -> bytes:
    font = ImageFont.load_default(size=28)
    img = Image.new("RGB", (520, 60 + 40 * len(RECEIPT)), "white")
    draw = ImageDraw.Draw(img)
    for k, line in enumerate(RECEIPT):
        draw.text((30, 30 + 40 * k), line, fill="black", font=font)
    return png(img)


def image_message(url: str, text: str) -> dict:
    return {"role": "user", "content": [{"type": "text", "text": text},
                                        {"type": "image_url", "image_url": {"url": url}}]}


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def test_receipt_image_to_structured_fields(client):
    schema = {"type": "object", "additionalProperties": False, "required": ["store", "total"],
              "properties": {"store": {"type": "string"}, "total": {"type": "number"}}}
    raw = client.chat.completions.with_raw_response.create(
        model="omnimini-coder", temperature=0, max_tokens=60,
        messages=[{"role": "system", "content": "You extract fields from receipts."},
                  image_message(data_url(receipt_png()),
                                "Give the store name and the TOTAL amount of this receipt as JSON.")],
        response_format={"type": "json_schema", "json_schema": {"name": "receipt", "strict": True, "schema": schema}})
    assert raw.headers["x-omnimini-image-input"] == "ocr"
    fields = json.loads(raw.parse().choices[0].message.content)
    assert fields["total"] == 12.5
    assert "harbor" in fields["store"].lower().replace("\u02c6", " ")


class _Files(http.server.BaseHTTPRequestHandler):
    files: dict[str, tuple[str, bytes]] = {}

    def do_GET(self):
        ctype, body = self.files.get(self.path, ("text/plain", b"missing"))
        self.send_response(200 if self.path in self.files else 404)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def web():
    _Files.files = {"/receipt.png": ("image/png", receipt_png()), "/page.html": ("text/html", b"<html></html>"),
                    "/fake.png": ("image/png", b"<html>not a png</html>")}
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


def test_image_by_http_url(client, web):
    raw = client.chat.completions.with_raw_response.create(
        model="omnimini-mini", max_tokens=5, messages=[image_message(web + "/receipt.png", "What shop?")])
    assert raw.headers["x-omnimini-image-input"] == "ocr"
    # The OCR text is in the prompt, so it costs many more tokens than the question alone.
    bare = client.chat.completions.create(model="omnimini-mini", max_tokens=5,
                                          messages=[{"role": "user", "content": "What shop?"}])
    assert raw.parse().usage.prompt_tokens > bare.usage.prompt_tokens + 20


def test_bad_images_are_400s(client, web):
    big = Image.fromarray(np.random.default_rng(0).integers(0, 256, (1500, 2000, 3), dtype=np.uint8))
    big_png = png(big)
    assert len(big_png) > 8 * 1024 * 1024
    cases = [
        (data_url(big_png), "image_too_large"),
        (data_url(b"hello, I am text", "text/plain"), "invalid_image_url"),
        (data_url(b"GIF89a but not really"), "invalid_image"),
        (data_url(png(Image.new("RGB", (4, 4))), "image/png").replace(";base64", ""), "invalid_image_url"),
        (web + "/page.html", "invalid_image_url"),
        (web + "/fake.png", "invalid_image"),
        (web + "/nothing.png", "invalid_image_url"),
        ("ftp://example.com/a.png", "invalid_image_url"),
    ]
    for url, code in cases:
        with pytest.raises(openai.BadRequestError) as e:
            client.chat.completions.create(model="omnimini-mini", messages=[image_message(url, "hi")])
        assert e.value.body["code"] == code, (url[:60], e.value.body)
        assert e.value.body["param"] == "messages[0].content[1]"
