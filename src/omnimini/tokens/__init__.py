"""Tokens: count text on many tokenizers, compare them, price text per model, count a chat request.

`load_tokenizer(name)` loads OpenAI's, Mistral's and any GGUF model's tokenizer; `count_chat_tokens`
counts a chat completion request exactly as the server bills it; `omnimini tokens compare` writes
the report in docs/tokens.md.
"""

from omnimini.tokens.tokenizers import (Tokenizer, TokenizerUnavailable, UnknownTokenizer,
                                        load_tokenizer)

__all__ = ["Tokenizer", "TokenizerUnavailable", "UnknownTokenizer", "load_tokenizer"]
