"""Sentence embeddings with all-MiniLM-L6-v2, run in numpy from the safetensors in its PyPI wheel.

The model is a 6-layer BERT (hidden 384, 12 heads) followed by mean pooling over real tokens and L2
normalisation, exactly the three modules of its sentence-transformers config. Doing the forward
pass in numpy keeps PyTorch (gigabytes) off a 2-core laptop; tests check the vectors against
reference vectors made by sentence-transformers itself (bench/make_minilm_reference.py).
"""

from __future__ import annotations

import json
import math
import threading
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer

LAYER_NORM_EPS = 1e-12        # config.json layer_norm_eps
BATCH = 32                    # sequences per forward pass


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + LAYER_NORM_EPS) * w + b


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact gelu, x * Phi(x)."""
    return 0.5 * x * (1.0 + _erf(x * (1.0 / math.sqrt(2.0))))


# Abramowitz & Stegun 7.1.26: |error| < 1.5e-7, below float32 resolution near 1; numpy has no erf
# and scipy would be a large dependency for one function.
_AS_P = 0.3275911
_AS_A = (0.254829592, -0.284496736, 1.421413741, -1.453152027, 1.061405429)


def _erf(x: np.ndarray) -> np.ndarray:
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + _AS_P * a)
    poly = t * (_AS_A[0] + t * (_AS_A[1] + t * (_AS_A[2] + t * (_AS_A[3] + t * _AS_A[4]))))
    return sign * (1.0 - poly * np.exp(-a * a))


class MiniLMEmbedder:
    def __init__(self, model_dir: Path):
        cfg = json.loads((model_dir / "config.json").read_text())
        st_cfg = json.loads((model_dir / "sentence_bert_config.json").read_text())
        self.max_tokens = int(st_cfg["max_seq_length"])
        self.dimensions = int(cfg["hidden_size"])
        self.heads = int(cfg["num_attention_heads"])
        self.layers = int(cfg["num_hidden_layers"])
        self.w = load_file(str(model_dir / "model.safetensors"))
        # Linear weights stored transposed and contiguous: one 2-D GEMM per layer projection.
        for name in [k for k in self.w if k.startswith("encoder.") and k.endswith("dense.weight")
                     or k.endswith(("query.weight", "key.weight", "value.weight"))]:
            self.w[name] = np.ascontiguousarray(self.w[name].T)
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        # tokenizer.json pads and truncates to 128; sentence-transformers truncates at max_seq_length.
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=self.max_tokens)
        self._lock = threading.Lock()

    def encode_ids(self, texts: list[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(texts)]

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        return self.embed_ids(self.encode_ids(texts))

    def embed_ids(self, ids: list[list[int]]) -> np.ndarray:
        """The same for token ids from `encode_ids` (with [CLS]/[SEP], at most max_tokens each)."""
        out = np.zeros((len(ids), self.dimensions), dtype=np.float32)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))   # batch similar lengths
        with self._lock:
            for s in range(0, len(order), BATCH):
                idx = order[s:s + BATCH]
                out[idx] = self._forward([ids[i] for i in idx])
        return out

    def _forward(self, batch: list[list[int]]) -> np.ndarray:
        w, n, t = self.w, len(batch), max(len(x) for x in batch)
        tok = np.zeros((n, t), dtype=np.int64)
        mask = np.zeros((n, t), dtype=np.float32)
        for i, x in enumerate(batch):
            tok[i, :len(x)] = x
            mask[i, :len(x)] = 1.0
        h = (w["embeddings.word_embeddings.weight"][tok] + w["embeddings.position_embeddings.weight"][:t]
             + w["embeddings.token_type_embeddings.weight"][0])
        h = _layer_norm(h, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
        d = self.dimensions // self.heads
        attn_bias = ((1.0 - mask) * -1e9)[:, None, None, :]     # padding is never attended to
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}."
            lin = lambda x, name: (x.reshape(n * t, -1) @ w[p + name + ".weight"]  # noqa: E731
                                   + w[p + name + ".bias"]).reshape(n, t, -1)
            split = lambda x: x.reshape(n, t, self.heads, d).transpose(0, 2, 1, 3)   # noqa: E731
            q = split(lin(h, "attention.self.query"))
            k = split(lin(h, "attention.self.key"))
            v = split(lin(h, "attention.self.value"))
            scores = q @ k.transpose(0, 1, 3, 2) / math.sqrt(d) + attn_bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            ctx = (scores / scores.sum(-1, keepdims=True)) @ v
            ctx = ctx.transpose(0, 2, 1, 3).reshape(n, t, self.dimensions)
            h = _layer_norm(h + lin(ctx, "attention.output.dense"),
                            w[p + "attention.output.LayerNorm.weight"], w[p + "attention.output.LayerNorm.bias"])
            ff = lin(_gelu(lin(h, "intermediate.dense")), "output.dense")
            h = _layer_norm(h + ff, w[p + "output.LayerNorm.weight"], w[p + "output.LayerNorm.bias"])
        pooled = (h * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
        return pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)
