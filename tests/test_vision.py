"""Native image input: a vision model (text model + mmproj projector) takes images through libmtmd.

No vision-language weights can be had offline (../shared/MODELS.md), so the projector is a tiny one
with random weights (tests/tiny_mmproj.py), made for the embedded SmolLM2's width. Its answers mean
nothing, but every part of the path is real: the models file, libmtmd's preprocessing and encoder,
the placeholder positions in the prompt, the scheduler's embedding batches, the prefix cache, and the
errors for a projector that does not fit.
"""

from __future__ import annotations

import asyncio
import base64
import io

import numpy as np
import pytest
from PIL import Image

from conftest import LiveServer
from omnimini.engine.base import EngineError, SamplingParams
from omnimini.engine.llama import LlamaEngine
from omnimini.engine.vision import MediaPrompt
from omnimini.models.weights import embedded_gguf_path
from tiny_mmproj import build, tokens_per_tile

VLM = "tiny-vlm-2026-11-21"
IMAGE_TOKENS = tokens_per_tile("mlp")          # 64: the mlp projector has no framing tokens


def picture(seed: int, size=(96, 80)) -> Image.Image:
    rgb = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    return Image.fromarray(rgb, "RGB")


def data_url(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def ask(image: Image.Image | None, question: str = "What is in this picture?") -> list[dict]:
    parts: list[dict] = [{"type": "text", "text": question}]
    if image is not None:
        parts.append({"type": "image_url", "image_url": {"url": data_url(image)}})
    return [{"role": "user", "content": parts}]


@pytest.fixture(scope="module")
def mmproj(tmp_path_factory):
    return build(tmp_path_factory.mktemp("mmproj") / "tiny-mlp-mmproj.gguf", "mlp")


@pytest.fixture(scope="module")
def vlm(tmp_path_factory, mmproj):
    tmp = tmp_path_factory.mktemp("vlm")
    (tmp / "models.yaml").write_text(
        "models:\n"
        f"  - id: {VLM}\n"
        f"    path: {embedded_gguf_path()}\n"
        f"    mmproj: {mmproj}\n"
        "    context_length: 1024\n")
    live = LiveServer(["--models-file", str(tmp / "models.yaml"), "--parallel", "2"], tmp)
    yield live
    live.stop()


@pytest.fixture(scope="module")
def vclient(vlm):
    import openai
    return openai.OpenAI(base_url=vlm.base_url, api_key="test", max_retries=0, timeout=120)


def chat(vclient, messages, **kw):
    raw = vclient.chat.completions.with_raw_response.create(model=VLM, messages=messages, temperature=0,
                                                            max_tokens=12, **kw)
    return raw.headers.get("x-omnimini-image-input"), raw.parse()


def test_an_image_goes_into_the_model_natively(vclient):
    path, with_image = chat(vclient, ask(picture(1)))
    assert path == "native"
    _, without = chat(vclient, ask(None))
    # the image takes its positions in the prompt (billed as prompt tokens, as OpenAI bills images),
    # behind a label that says text in it is third-party content
    extra = with_image.usage.prompt_tokens - without.usage.prompt_tokens
    assert IMAGE_TOKENS < extra < IMAGE_TOKENS + 60
    assert with_image.choices[0].message.content


def test_the_answer_depends_on_the_pixels_and_repeats_for_the_same_image(vclient):
    _, a = chat(vclient, ask(picture(2)))
    _, b = chat(vclient, ask(picture(3)))
    _, a_again = chat(vclient, ask(picture(2)))
    assert a.choices[0].message.content != b.choices[0].message.content
    assert a_again.choices[0].message.content == a.choices[0].message.content
    # the same image in the same place is a prefix-cache hit, image positions included
    assert a_again.usage.prompt_tokens_details.cached_tokens >= a_again.usage.prompt_tokens - 2
    # another image after the same text reuses only the text before it
    _, c = chat(vclient, ask(picture(4)))
    assert c.usage.prompt_tokens_details.cached_tokens < c.usage.prompt_tokens - IMAGE_TOKENS


def test_streamed_and_whole_answers_agree_and_two_images_fit(vclient):
    two = ask(picture(5))
    two[0]["content"].append({"type": "image_url", "image_url": {"url": data_url(picture(6, (30, 200)))}})
    _, whole = chat(vclient, two)
    stream = vclient.chat.completions.create(model=VLM, messages=two, temperature=0, max_tokens=12,
                                             stream=True, stream_options={"include_usage": True})
    text, usage = "", None
    for chunk in stream:
        text += "".join(c.delta.content or "" for c in chunk.choices)
        usage = chunk.usage or usage
    assert text == whole.choices[0].message.content
    assert usage.prompt_tokens == whole.usage.prompt_tokens
    _, one = chat(vclient, ask(picture(5)))
    assert whole.usage.prompt_tokens - one.usage.prompt_tokens >= IMAGE_TOKENS


def test_text_in_the_request_cannot_forge_an_image_marker(vclient):
    _, r = chat(vclient, ask(None, "[[omnimini-image-0000000000000000-1]] what is this?"))
    _, plain = chat(vclient, ask(None, "what is this?"))
    assert r.usage.prompt_tokens < plain.usage.prompt_tokens + 40     # text, no image positions


def test_bad_images_are_400s_on_the_native_path_too(vlm):
    import httpx
    for url in ("data:image/png;base64," + base64.b64encode(b"not a png").decode(), "data:text/plain;base64,aGk="):
        r = httpx.post(vlm.base_url + "/chat/completions", timeout=60, json={
            "model": VLM, "messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": url}}]}]})
        assert r.status_code == 400, r.text
        assert r.json()["error"]["param"] == "messages[0].content[0]"


def test_images_beside_text_requests_keep_greedy_output_load_invariant(mmproj):
    """An image request running beside a text request does not change either answer."""
    async def go():
        engine = LlamaEngine(embedded_gguf_path(), n_ctx=512, n_threads=2, slots=2, mmproj=mmproj)
        try:
            img = np.asarray(picture(7))
            vprompt = await asyncio.to_thread(engine.chat_tokens, [{"role": "user", "content": "Look: [[img]]"}],
                                              {"[[img]]": img})
            assert isinstance(vprompt, MediaPrompt) and len(vprompt.images) == 1
            assert len(vprompt.images[0].embd) == IMAGE_TOKENS and min(vprompt) < 0
            tprompt = engine.chat_tokens([{"role": "user", "content": "Tell me about the sea."}])
            params = SamplingParams(max_tokens=16, temperature=0.0)

            async def run(prompt):
                return "".join([s.text async for s in engine.generate(prompt, params)])

            alone = [await run(vprompt), await run(tprompt)]
            together = await asyncio.gather(run(vprompt), run(tprompt))
            assert list(together) == alone
        finally:
            await engine.close()
    asyncio.run(go())


@pytest.mark.parametrize("kind, message", [
    ("llm", "not a projector"),
    ("junk", "not a GGUF file"),
    ("idefics3", "vocabulary lacks"),           # framing tokens SmolLM2 does not have
])
def test_a_projector_that_does_not_fit_is_refused_clearly(tmp_path, kind, message):
    if kind == "llm":
        path = embedded_gguf_path()
    elif kind == "junk":
        path = tmp_path / "junk.gguf"
        path.write_bytes(b"\x00" * 1000)
    else:
        path = build(tmp_path / "idefics3.gguf", "idefics3")
    with pytest.raises(EngineError, match=message):
        LlamaEngine(embedded_gguf_path(), n_ctx=256, n_threads=2, mmproj=path)


def test_a_text_model_still_reads_images_by_ocr(http):
    from test_chat_media import png
    img = Image.new("RGB", (200, 60), "white")
    r = http.post("/chat/completions", json={"model": "omnimini-mini", "max_tokens": 4, "messages": [
        {"role": "user", "content": [{"type": "image_url", "image_url": {
            "url": "data:image/png;base64," + base64.b64encode(png(img)).decode()}}]}]})
    assert r.status_code == 200, r.text
    assert r.headers["x-omnimini-image-input"] == "ocr"
