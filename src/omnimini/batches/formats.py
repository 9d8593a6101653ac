"""OpenAI's Batch API file formats (https://platform.openai.com/docs/guides/batch).

Input, one request per line:
    {"custom_id": "request-1", "method": "POST", "url": "/v1/chat/completions", "body": {...}}
Output file, one answered request per line (input order here; OpenAI's may differ):
    {"id": "batch_req_...", "custom_id": "request-1",
     "response": {"status_code": 200, "request_id": "...", "body": {...}}, "error": null}
Error file: requests the API answered with an error keep that shape with the error status and
body; lines that could not be run at all (malformed, expired, cancelled) carry
    "response": null, "error": {"code": "...", "message": "..."}
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

# Endpoints a batch can target here (OpenAI's list also has /v1/responses, /v1/moderations, images).
SUPPORTED_ENDPOINTS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
COMPLETION_WINDOWS = {"24h": 24 * 3600}   # OpenAI: "Currently only 24h is supported"
MAX_LINES = 50_000                         # OpenAI: "The file can contain up to 50,000 requests"
MAX_CUSTOM_ID = 512


def request_id() -> str:
    return "batch_req_" + secrets.token_hex(16)


@dataclass
class ParsedLine:
    line: int
    custom_id: str | None
    body: dict[str, Any] | None
    error: tuple[str, str] | None          # (code, message) when the line cannot run


def parse_line(number: int, raw: bytes, endpoint: str, seen: set[str]) -> ParsedLine:
    """Check one input line; a bad one becomes an error with a reason, never an exception."""
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        return ParsedLine(number, None, None, ("invalid_json", f"Line {number} is not valid JSON: {e}."))
    if not isinstance(obj, dict):
        return ParsedLine(number, None, None, ("invalid_request", f"Line {number} must be a JSON object."))
    cid = obj.get("custom_id")
    cid = cid if isinstance(cid, str) else None

    def bad(code: str, message: str) -> ParsedLine:
        return ParsedLine(number, cid, None, (code, f"Line {number}: {message}"))

    unknown = set(obj) - {"custom_id", "method", "url", "body"}
    if unknown:
        return bad("invalid_request", f"unrecognized field(s) {sorted(unknown)}.")
    if cid is None or not cid:
        return bad("missing_custom_id", "'custom_id' must be a non-empty string.")
    if len(cid) > MAX_CUSTOM_ID:
        return bad("invalid_custom_id", f"'custom_id' is longer than {MAX_CUSTOM_ID} characters.")
    if cid in seen:
        return bad("duplicate_custom_id", f"'custom_id' {cid!r} is used by an earlier line; "
                   "custom_id must be unique within a batch.")
    seen.add(cid)
    if obj.get("method") != "POST":
        return bad("invalid_method", "'method' must be \"POST\".")
    if obj.get("url") != endpoint:
        return bad("invalid_url", f"'url' is {obj.get('url')!r} but this batch's endpoint is {endpoint!r}.")
    body = obj.get("body")
    if not isinstance(body, dict):
        return bad("invalid_body", "'body' must be a JSON object with the request.")
    if body.get("stream"):
        return bad("invalid_body", "streaming ('stream': true) is not supported in a batch.")
    return ParsedLine(number, cid, body, None)


def answered(rid: str, custom_id: str | None, status: int, request_id_: str, body: dict) -> dict:
    return {"id": rid, "custom_id": custom_id,
            "response": {"status_code": status, "request_id": request_id_, "body": body}, "error": None}


def not_run(rid: str, custom_id: str | None, code: str, message: str) -> dict:
    return {"id": rid, "custom_id": custom_id, "response": None, "error": {"code": code, "message": message}}
