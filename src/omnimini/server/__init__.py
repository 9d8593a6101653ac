"""Layer 5: HTTP. Routing, SSE framing and the OpenAI error envelope; no model logic."""
