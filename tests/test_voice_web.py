"""The playground's microphone in Debian's Chromium through Playwright: a spoken question (Piper's
voice, played by Chromium's fake capture device) goes through getUserMedia, the AudioWorklet's
downsampling and the voice socket; the page shows the transcript and the streamed answer and plays
the answer's audio.

Loads llama models: run under the shared lock
    flock /tmp/omnimini-llama.lock .venv/bin/python -m pytest tests/test_voice_web.py -x -q
"""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest

from omnimini.engine.audio import decode, wav_bytes

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--autoplay-policy=no-user-gesture-required",
                 "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
QUESTION = "What is the capital of France?"
RATE = 48000          # what a real microphone gives; the page's worklet takes it down to 16 kHz


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


@pytest.fixture(scope="module")
def question_wav(client, tmp_path_factory):
    """The question as Chromium's fake microphone plays it: 0.5 s of quiet, the words, 3 s of quiet
    (the file is played once: `%noloop`)."""
    wav = client.audio.speech.create(model="tts-1", voice="alloy", input=QUESTION, response_format="wav").content
    speech = decode(wav, rate=RATE)
    quiet = np.zeros(RATE // 2, np.float32)
    audio = np.concatenate([quiet, speech, quiet, quiet, quiet, quiet, quiet, quiet])
    path = tmp_path_factory.mktemp("voice-web") / "question.wav"
    path.write_bytes(wav_bytes((np.clip(audio, -1, 1) * 32767).astype(np.int16), RATE))
    return path


def _browser(p, wav):
    return p.chromium.launch(executable_path=CHROMIUM,
                             args=[*CHROMIUM_ARGS, f"--use-file-for-fake-audio-capture={wav}%noloop"])


@pytest.mark.skipif(not shutil.which(CHROMIUM), reason="Debian's chromium is not installed (make test installs it)")
@pytest.mark.parametrize("hands_free", [True, False], ids=["server-vad", "push-to-talk"])
def test_playground_talks_through_the_microphone(server, question_wav, hands_free):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = _browser(p, question_wav)
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/playground")
        expect(page.locator("#model option")).not_to_have_count(0)
        page.select_option("#model", "omnimini-mini")
        if not hands_free:
            page.uncheck("#hands-free")
        page.click("#talk")
        if not hands_free:
            expect(page.locator("#talk")).to_have_text("Done", timeout=30_000)
            page.wait_for_function("Number(document.getElementById('audio-sent').textContent) > 3.5 * 32000",
                                   timeout=20_000)                  # 3.5 s of 16 kHz pcm16: the whole question
            page.click("#talk")
        heard = page.locator("#log .msg.user.voice")
        expect(heard).to_have_count(1, timeout=40_000)
        assert words(QUESTION) == words(heard.inner_text()), heard.inner_text()
        expect(page.locator("#voice-turns")).to_have_text("1", timeout=40_000)
        answer = page.locator("#log .msg.assistant.voice")
        assert answer.inner_text().strip()
        received = int(page.inner_text("#audio-received"))
        assert received > 24000                                      # > 0.5 s of 24 kHz pcm16
        # and it is played: every buffer queued on the AudioContext ends (Chromium's fake output plays it)
        page.wait_for_function(f"Number(document.getElementById('audio-played').textContent) >= {received / 48000 - 0.05}",
                               timeout=30_000)
        expect(page.locator("#status")).to_contain_text("First audio")
        page.click("#hang-up")
        expect(page.locator("#talk")).to_have_text("Talk")
        assert not errors, errors
        browser.close()
