"""The Batch API (layer 4): OpenAI's /v1/batches over the one service pipeline, durable in the store."""
