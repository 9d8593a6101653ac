"""Read a raw SSE response the way a strict client would: every line, in order."""

from __future__ import annotations

import json

import httpx


def sse_events(http: httpx.Client, path: str, body: dict) -> tuple[list[dict], list[str]]:
    """POST and return (parsed JSON events, raw data lines). Asserts the framing is OpenAI's."""
    events, raw = [], []
    with http.stream("POST", path, json=body) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if not line:
                continue
            assert line.startswith("data: "), line
            raw.append(line)
            if line != "data: [DONE]":
                events.append(json.loads(line[len("data: "):]))
    assert raw[-1] == "data: [DONE]" and raw.count("data: [DONE]") == 1
    return events, raw
