"""Layer 1: text in, tokens out. Chat templates, tokenizers, backends (llama.cpp now; vLLM later)."""
