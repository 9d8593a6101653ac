"""Why the load-invariant scheduler gives a lone decoding sequence a twin token, not a companion in
another sequence, when flash attention is on (docs/concurrency.md, run 6).

    flock /tmp/omnimini-llama.lock .venv/bin/python bench/fa_ubatch_demo.py [1|0]   # FA on|off

With one KV stream per sequence and FA on, where a decoding token's logits come from
depends on which other sequences share its llama_decode *and in what order*.

Seq 1 holds a 400-token prompt; then its next token is decoded (a) alone, (b) with a companion
token in seq 0 placed after it ([1, 0]), (c) with the companion before it ([0, 1]), (d) with a
companion in seq 2 after it ([1, 2]). Prints max |logit diff| vs (c) and LLAMA_BATCH_DEBUG-style
evidence comes from running with LLAMA_BATCH_DEBUG=1.
"""
import ctypes
import sys
from pathlib import Path

import llama_cpp
import numpy as np

from omnimini.models.catalog import EMBEDDED_CHAT_SOURCE
from omnimini.models.weights import locate

fa = int(sys.argv[1]) if len(sys.argv) > 1 else 1
model_path = str(locate(EMBEDDED_CHAT_SOURCE, Path("/nonexistent")))
llama_cpp.llama_backend_init()
mp = llama_cpp.llama_model_default_params()
model = llama_cpp.llama_model_load_from_file(model_path.encode(), mp)
vocab = llama_cpp.llama_model_get_vocab(model)
cp = llama_cpp.llama_context_default_params()
cp.n_ctx, cp.n_batch, cp.n_ubatch, cp.n_seq_max, cp.kv_unified = 2048 * 4, 512, 512, 4, False
cp.n_threads = cp.n_threads_batch = 2
cp.flash_attn_type = llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED if fa else llama_cpp.LLAMA_FLASH_ATTN_TYPE_DISABLED
ctx = llama_cpp.llama_init_from_model(model, cp)
mem = llama_cpp.llama_get_memory(ctx)
n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)
batch = llama_cpp.llama_batch_init(512, 0, 1)
rng = np.random.default_rng(0)
prompt = [int(t) for t in rng.integers(100, 20000, 400)]


def decode(items):
    """items: (token, pos, seq, logits)"""
    for i, (t, p, s, l) in enumerate(items):
        batch.token[i], batch.pos[i], batch.n_seq_id[i] = t, p, 1
        batch.seq_id[i][0], batch.logits[i] = s, l
    batch.n_tokens = len(items)
    assert llama_cpp.llama_decode(ctx, batch) == 0


for seq in (0, 1, 2):       # every sequence holds the same prompt, in chunks of 50
    for c in range(0, 400, 50):
        decode([(t, c + i, seq, False) for i, t in enumerate(prompt[c:c + 50])])

nxt = 42


def step(order):
    # "1t": a twin: the same token at position 401 of seq 1, no logits
    items = [(nxt, 401, 1, False) if s == "1t" else (nxt, 400, s, s == 1) for s in order]
    decode(items)
    out = np.ctypeslib.as_array(llama_cpp.llama_get_logits_ith(ctx, order.index(1)), shape=(n_vocab,)).copy()
    for s in order:
        llama_cpp.llama_memory_seq_rm(mem, 1 if s == "1t" else s, 400, -1)
    return out


res = {name: step(order) for name, order in
       (("alone [1]", [1]), ("[1, 0]", [1, 0]), ("[0, 1]", [0, 1]), ("[1, 2]", [1, 2]), ("[0, 1, 2]", [0, 1, 2]),
        ("alone [1] again", [1]), ("twin [1, 1t]", [1, "1t"]), ("[1, 1t, 0]", [1, "1t", 0]))}
ref = res["[0, 1]"]
for name, r in res.items():
    print(f"FA={fa} {name:16s} max|logit - [0,1]| = {np.abs(r - ref).max():.3g}")
