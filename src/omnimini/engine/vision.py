"""Images into a vision model natively, through llama.cpp's multimodal library (libmtmd).

A vision model is a text model plus a projector, llama.cpp's `mmproj` GGUF. The projector holds an
image encoder and the layer that maps the encoder's output into the text model's embedding space.
mtmd turns an image into chunks: the model's own framing tokens (text), and image positions whose
embeddings the encoder computes. We take those chunks apart and use them ourselves, because the
scheduler owns every `llama_decode` (engine/scheduler.py):
- the framing tokens join the prompt's token ids;
- the image positions get placeholder ids in the prompt, with their embeddings beside it (a
  `MediaPrompt`);
- the scheduler decodes placeholder positions from those embeddings, in a `llama_decode` of their
  own, because a llama.cpp batch holds token ids or embeddings, never both.

Placeholder ids are negative and derived from the image's pixels. The prefix cache compares prompts
by their ids, so the same image in the same place reuses its cells, and another image never does.

Images are encoded when the prompt is built, on the request's own thread. One encode runs at a
time, and the embeddings are copied out before the next one.

Supported projectors: those whose image positions the text model attends causally with plain 1-D
positions. That is LLaVA-style MLP projectors, SmolVLM / Idefics3 and most others. Projectors that
need non-causal attention over the image (Gemma 3) or M-RoPE positions (Qwen2-VL) are refused at
load with a clear error.

A projector must also match the text model: mtmd refuses one whose output width differs, and we
refuse one whose framing tokens are missing from the model's vocabulary (mtmd writes them as
LLAMA_TOKEN_NULL). A file that is not a projector at all is refused before mtmd sees it, from its
GGUF header. mtmd aborts the process on some inconsistent tensor shapes, and we check the
header's shapes that we can.
"""

from __future__ import annotations

import ctypes
import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

import llama_cpp
import llama_cpp.mtmd_cpp as mtmd
import numpy as np

from omnimini.engine.base import EngineError

# Tensors that give a projector's output width, per projector type (llama.cpp tools/mtmd/clip.cpp,
# clip_n_mmproj_embd), for the header check. Types not listed are left to mtmd's own checks.
PROJECTOR_OUTPUT = {"mlp": "mm.2.weight", "mlp_norm": "mm.2.weight", "idefics3": "mm.model.fc.weight"}
GGUF_MAGIC = b"GGUF"
# Placeholder ids: -(1 + a 56-bit hash of the image and the position), far from any real token id.
PLACEHOLDER_BITS = 56


@dataclass
class ImageSpan:
    """Positions [start, start + len(embd)) of a prompt are an image: these rows of embeddings."""

    start: int
    embd: np.ndarray            # float32 [n_positions, n_embd]

    @property
    def end(self) -> int:
        return self.start + len(self.embd)


class MediaPrompt(list):
    """Prompt token ids in which images sit as placeholder ids, with the images' embeddings."""

    def __init__(self, tokens: list[int], images: list[ImageSpan]):
        super().__init__(tokens)
        self.images = images


def check_projector(path: Path, n_embd: int) -> None:
    """Refuse, from the GGUF header alone, a file that is not a vision projector for a model of
    width `n_embd` (EngineError saying why)."""
    import gguf   # llama.cpp's own GGUF reader; reads the header, maps no weights

    try:
        with open(path, "rb") as f:
            if f.read(4) != GGUF_MAGIC:
                raise EngineError(f"{path} is not a GGUF file, so not a projector (mmproj)")
        reader = gguf.GGUFReader(str(path))
    except OSError as e:
        raise EngineError(f"cannot read the projector {path}: {e.strerror}") from e
    except EngineError:
        raise
    except Exception as e:          # noqa: BLE001 - the reader raises many kinds on a corrupt file
        raise EngineError(f"{path} is a corrupt GGUF file ({type(e).__name__})") from e

    def field(key: str):
        f = reader.fields.get(key)
        return None if f is None else f.contents()

    arch = field("general.architecture")
    if arch != "clip":
        raise EngineError(f"{path} is not a projector (mmproj): its GGUF architecture is {arch!r}, "
                          "not 'clip'. Give the vision model's mmproj file.")
    if not field("clip.has_vision_encoder"):
        raise EngineError(f"the projector {path} has no vision encoder")
    kind = field("clip.projector_type") or field("clip.vision.projector_type")
    shapes = {t.name: [int(x) for x in t.shape] for t in reader.tensors}
    out = shapes.get(PROJECTOR_OUTPUT.get(kind, ""))
    if out is not None and (len(out) != 2 or out[1] != n_embd):
        raise EngineError(f"the projector {path} outputs {out[-1]}-wide embeddings; the model takes {n_embd}")
    width, image, patch = (field("clip.vision.embedding_length"), field("clip.vision.image_size"),
                           field("clip.vision.patch_size"))
    if width and image and patch:     # the shapes mtmd does not check before it builds its graph
        expect = {"v.patch_embd.weight": [patch, patch, 3, width],
                  "v.position_embd.weight": [width, (image // patch) ** 2]}
        for name, shape in expect.items():
            if name in shapes and shapes[name] != shape:
                raise EngineError(f"the projector {path} is inconsistent: {name} has shape {shapes[name]}, "
                                  f"expected {shape}")


class VisionProjector:
    """An mmproj loaded beside a text model: images in, framing tokens and embeddings out."""

    def __init__(self, path: Path, model: llama_cpp.llama_model_p, n_threads: int):
        self.n_embd = llama_cpp.llama_model_n_embd_inp(model)
        check_projector(path, self.n_embd)
        params = mtmd.mtmd_context_params_default()
        params.use_gpu, params.n_threads, params.print_timings = False, n_threads, False
        params.warmup = True      # one encode at load, so that a bad graph fails now, not mid-request
        self._ctx = mtmd.mtmd_init_from_file(str(path).encode(), model, params)
        if not self._ctx:
            raise EngineError(f"llama.cpp could not load the projector {path} for this model (see the "
                              "server log: a projector made for another model has another width)")
        self._lock = threading.Lock()
        try:
            if not mtmd.mtmd_support_vision(self._ctx):
                raise EngineError(f"the projector {path} takes no images")
            if mtmd.mtmd_decode_use_mrope(self._ctx):
                raise EngineError("this model places image positions with M-RoPE (Qwen2-VL style), which "
                                  "omnimini does not support yet")
            self.image_prompt(np.zeros((1, 1, 3), np.uint8))    # framing tokens and attention: checked
        except EngineError:
            self.close()
            raise

    def image_prompt(self, rgb: np.ndarray) -> list[int | np.ndarray]:
        """One image as the model takes it: its framing token ids, and float32 [n, n_embd] arrays of
        embeddings where the image goes, in order."""
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        ny, nx = rgb.shape[:2]
        with self._lock:
            bitmap = mtmd.mtmd_bitmap_init(nx, ny, rgb.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8)))
            if not bitmap:
                raise EngineError("libmtmd could not take the image")
            chunks = mtmd.mtmd_input_chunks_init()
            try:
                part = mtmd.mtmd_input_part(text=None, bitmap=bitmap)
                parts = (ctypes.POINTER(mtmd.mtmd_input_part) * 1)(ctypes.pointer(part))
                rc = mtmd.mtmd_tokenize_from_parts(self._ctx, chunks, parts, 1, False)
                if rc != 0:
                    raise EngineError(f"libmtmd could not preprocess the image (code {rc})")
                return [self._chunk(mtmd.mtmd_input_chunks_get(chunks, i))
                        for i in range(mtmd.mtmd_input_chunks_size(chunks))]
            finally:
                mtmd.mtmd_input_chunks_free(chunks)
                mtmd.mtmd_bitmap_free(bitmap)

    def _chunk(self, chunk) -> list[int] | np.ndarray:
        kind = mtmd.mtmd_input_chunk_get_type(chunk)
        if kind == mtmd.MTMD_INPUT_CHUNK_TYPE_TEXT:
            n = ctypes.c_size_t()
            ptr = mtmd.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(n))
            tokens = [ptr[i] for i in range(n.value)]
            if llama_cpp.LLAMA_TOKEN_NULL in tokens:
                raise EngineError("the projector frames images with tokens that this model's vocabulary "
                                  "lacks: it was made for another model")
            return tokens
        if kind != mtmd.MTMD_INPUT_CHUNK_TYPE_IMAGE:
            raise EngineError("the projector gave a kind of input other than an image")
        if mtmd.mtmd_decode_use_non_causal(self._ctx, chunk):
            raise EngineError("this model attends to images non-causally (Gemma 3 style), which omnimini "
                              "does not support yet")
        n = mtmd.mtmd_input_chunk_get_n_tokens(chunk)
        if mtmd.mtmd_input_chunk_get_n_pos(chunk) != n:
            raise EngineError("the projector places image positions in a way omnimini does not support yet")
        if mtmd.mtmd_encode_chunk(self._ctx, chunk) != 0:
            raise EngineError("the image encoder failed")
        out = mtmd.mtmd_get_output_embd(self._ctx)          # valid until the next encode: copy it
        return np.ctypeslib.as_array(out, shape=(n * self.n_embd,)).reshape(n, self.n_embd).copy()

    def close(self) -> None:
        if self._ctx:
            mtmd.mtmd_free(self._ctx)
            self._ctx = None


def placeholders(rgb: np.ndarray, index: int, n: int) -> list[int]:
    """Ids for the `n` positions of the `index`-th embedding block of an image: negative, the same
    for the same pixels, and distinct (with overwhelming probability) for any other image."""
    digest = hashlib.sha256(np.ascontiguousarray(rgb).tobytes() + repr(rgb.shape).encode()).digest()
    ids = []
    for k in range(n):
        h = hashlib.blake2b(digest + index.to_bytes(4, "little") + k.to_bytes(4, "little"),
                            digest_size=PLACEHOLDER_BITS // 8).digest()
        ids.append(-1 - int.from_bytes(h, "little"))
    return ids
