"""Tiny random-weight vision projectors (mmproj GGUFs) for libmtmd, for the native image tests.

Purpose: test omnimini's vision plumbing (mtmd tokenize/encode -> embedding batches)
without real VLM weights (none are downloadable offline). The projector outputs
embeddings of size N_EMBD_TEXT = 576, the hidden size of SmolLM2-135M-Instruct, so
mtmd_init_from_file accepts it next to the embedded SmolLM2 GGUF.

Every key / tensor name below comes from the vendored llama.cpp loader:
  tools/mtmd/clip-impl.h  (KEY_* and TN_* constants)
  tools/mtmd/clip.cpp     (clip_model_loader::load_hparams / load_tensors, IDEFICS3 case)
  tools/mtmd/models/siglip.cpp (graph: conv patch embd + ViT + pixel shuffle + mm.model.fc)
The weights are random (seeded) so the output is deterministic but meaningless.

Two projector types:
  idefics3 (default file tiny-idefics3-mmproj.gguf): SmolVLM's real connector. Its mtmd prompt
      framing looks up <fake_token_around_image> / <global-img> as single vocab tokens; SmolLM2's
      vocab has neither, so mtmd emits LLAMA_TOKEN_NULL (-1) in text chunks (see notes).
  mlp (tiny-mlp-mmproj.gguf): LLaVA-1.5 style CLIP + 2-layer MLP; no special tokens, one image
      chunk of (IMAGE_SIZE/PATCH_SIZE)^2 tokens. The one that works end to end with SmolLM2.

Usage: .venv/bin/python tests/tiny_mmproj.py --type mlp --out OUT.gguf
"""

from __future__ import annotations

import argparse
from pathlib import Path

import gguf
import numpy as np

# Sizes. Small so that one encode takes ~milliseconds on 2 CPU cores.
N_EMBD_TEXT = 576  # SmolLM2-135M n_embd: mtmd rejects a mismatch at init
IMAGE_SIZE = 64  # clip.vision.image_size (tile side, px)
PATCH_SIZE = 8  # clip.vision.patch_size -> (64/8)^2 = 64 patches per tile
SCALE_FACTOR = 2  # clip.vision.projector.scale_factor (pixel shuffle) -> 64/4 = 16 tokens per tile
N_EMBD = 32  # vision hidden size
N_HEAD = 2
N_FF = 64  # must differ from N_EMBD, else clip.cpp's "ffn up/down swapped" heuristic misfires
N_LAYER = 1  # idefics3 (build_vit runs all layers)
N_LAYER_MLP = 2  # llava's graph stops before the last layer (feature layer n_layer-1)
N_MM_HIDDEN = 64  # mlp: mm.0 (vision n_embd -> 64) gelu mm.2 (64 -> 576)
EPS = 1e-6
# preproc_image_size (longest edge) == IMAGE_SIZE: every image becomes a 1x1 grid
# (1 slice) + the overview, instead of one 64px slice per 64px of the input image.
PREPROC_IMAGE_SIZE = IMAGE_SIZE
# SigLIP normalisation used by SmolVLM (HF preprocessor_config.json image_mean/std).
IMAGE_MEAN = [0.5, 0.5, 0.5]
IMAGE_STD = [0.5, 0.5, 0.5]
SEED = 1234

PROJECTORS = ("idefics3", "mlp")


def build(out: Path, proj: str = "idefics3") -> Path:
    if proj not in PROJECTORS:
        raise ValueError(f"projector {proj!r} not in {PROJECTORS}")
    n_layer = N_LAYER if proj == "idefics3" else N_LAYER_MLP
    rng = np.random.default_rng(SEED)

    def rand(*shape: int, scale: float = 0.02) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    def ones(n: int) -> np.ndarray:
        return np.ones(n, dtype=np.float32)

    def zeros(n: int) -> np.ndarray:
        return np.zeros(n, dtype=np.float32)

    n_pos = (IMAGE_SIZE // PATCH_SIZE) ** 2
    w = gguf.GGUFWriter(str(out), arch="clip")  # general.architecture = "clip"
    w.add_name(f"omnimini tiny {proj} test projector (random weights)")
    w.add_description(f"synthetic ViT+{proj} mmproj for plumbing tests; not a real model")
    w.add_file_type(0)  # all F32
    w.add_bool("clip.has_vision_encoder", True)
    w.add_bool("clip.has_audio_encoder", False)
    w.add_string("clip.projector_type", proj)
    w.add_bool("clip.use_gelu", True)  # SigLIP uses gelu (tanh); default would be gelu_quick
    w.add_uint32("clip.vision.embedding_length", N_EMBD)
    w.add_uint32("clip.vision.feed_forward_length", N_FF)
    w.add_uint32("clip.vision.block_count", n_layer)
    w.add_uint32("clip.vision.projection_dim", N_EMBD_TEXT)
    w.add_uint32("clip.vision.attention.head_count", N_HEAD)
    w.add_float32("clip.vision.attention.layer_norm_epsilon", EPS)
    w.add_uint32("clip.vision.image_size", IMAGE_SIZE)
    w.add_uint32("clip.vision.patch_size", PATCH_SIZE)
    if proj == "idefics3":
        w.add_uint32("clip.vision.projector.scale_factor", SCALE_FACTOR)
        w.add_uint32("clip.vision.preproc_image_size", PREPROC_IMAGE_SIZE)
    w.add_array("clip.vision.image_mean", IMAGE_MEAN)
    w.add_array("clip.vision.image_std", IMAGE_STD)

    # numpy shapes are PyTorch order; gguf reverses them into ggml ne[] order.
    # conv kernel: ggml ne [KW, KH, C_in, C_out]
    w.add_tensor("v.patch_embd.weight", rand(N_EMBD, 3, PATCH_SIZE, PATCH_SIZE))
    w.add_tensor("v.patch_embd.bias", zeros(N_EMBD))
    w.add_tensor("v.position_embd.weight", rand(n_pos, N_EMBD))  # ne [n_embd, n_pos]
    for il in range(n_layer):
        p = f"v.blk.{il}"
        for name in ("attn_q", "attn_k", "attn_v", "attn_out"):
            w.add_tensor(f"{p}.{name}.weight", rand(N_EMBD, N_EMBD, scale=0.2))
            w.add_tensor(f"{p}.{name}.bias", zeros(N_EMBD))
        w.add_tensor(f"{p}.ln1.weight", ones(N_EMBD))
        w.add_tensor(f"{p}.ln1.bias", zeros(N_EMBD))
        w.add_tensor(f"{p}.ln2.weight", ones(N_EMBD))
        w.add_tensor(f"{p}.ln2.bias", zeros(N_EMBD))
        w.add_tensor(f"{p}.ffn_up.weight", rand(N_FF, N_EMBD, scale=0.2))  # ne [n_embd, n_ff]
        w.add_tensor(f"{p}.ffn_up.bias", zeros(N_FF))
        w.add_tensor(f"{p}.ffn_down.weight", rand(N_EMBD, N_FF, scale=0.2))  # ne [n_ff, n_embd]
        w.add_tensor(f"{p}.ffn_down.bias", zeros(N_EMBD))
    w.add_tensor("v.post_ln.weight", ones(N_EMBD))
    w.add_tensor("v.post_ln.bias", zeros(N_EMBD))
    if proj == "idefics3":
        # connector: pixel-shuffled features (n_embd * s^2) -> text n_embd, no bias
        w.add_tensor("mm.model.fc.weight", rand(N_EMBD_TEXT, N_EMBD * SCALE_FACTOR**2, scale=0.05))
    else:
        # LLaVA projector: mm.0 -> gelu -> mm.2 (clip.cpp TN_LLAVA_PROJ "mm.%d.%s")
        w.add_tensor("mm.0.weight", rand(N_MM_HIDDEN, N_EMBD, scale=0.2))
        w.add_tensor("mm.0.bias", zeros(N_MM_HIDDEN))
        w.add_tensor("mm.2.weight", rand(N_EMBD_TEXT, N_MM_HIDDEN, scale=0.05))
        w.add_tensor("mm.2.bias", zeros(N_EMBD_TEXT))

    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


def tokens_per_tile(proj: str = "idefics3") -> int:
    merge = SCALE_FACTOR if proj == "idefics3" else 1
    return (IMAGE_SIZE // PATCH_SIZE // merge) ** 2


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--type", choices=PROJECTORS, default="mlp")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    path = build(a.out, a.type)
    print(f"wrote {path} ({path.stat().st_size} bytes), {tokens_per_tile(a.type)} tokens per tile")
