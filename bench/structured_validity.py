"""How often are tool calls and structured outputs valid, and what does constraining cost?

Starts `omnimini serve` on loopback with the embedded model, sends N requests (default 200) spread
over varied JSON schemas and tool sets in five modes (tool_choice required / named / auto,
response_format json_object / json_schema), and checks every output: does it parse, does it
validate against its schema (jsonschema), is every tool call's `arguments` valid for its function.
Then measures decode tokens/s of the same prompts with and without a grammar and prints the ratio.

    .venv/bin/python bench/structured_validity.py [--requests 200] [--threads 2] [--json out.json]

Targets (issue 4): 100% valid for required, named, json_object and json_schema; constrained decoding
at least 0.8x the tokens/s of unconstrained.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import httpx
import jsonschema

SCHEMAS = {
    "person": {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
               "required": ["name", "age"], "additionalProperties": False},
    "receipt": {"type": "object", "properties": {
        "store": {"type": "string"}, "total": {"type": "number"},
        "items": {"type": "array", "items": {"type": "object", "properties": {
            "name": {"type": "string"}, "price": {"type": "number"}}, "required": ["name", "price"],
            "additionalProperties": False}, "maxItems": 5}},
        "required": ["store", "total", "items"], "additionalProperties": False},
    "sentiment": {"type": "object", "properties": {
        "label": {"enum": ["positive", "negative", "neutral"]}, "score": {"type": "number"}},
        "required": ["label", "score"], "additionalProperties": False},
    "event": {"type": "object", "properties": {
        "title": {"type": "string", "maxLength": 60}, "date": {"type": "string", "format": "date"},
        "attendees": {"type": "array", "items": {"type": "string"}, "maxItems": 4}},
        "required": ["title", "date", "attendees"], "additionalProperties": False},
    "nested_refs": {"$defs": {"addr": {"type": "object", "properties": {
        "city": {"type": "string"}, "zip": {"type": ["string", "null"]}}, "required": ["city", "zip"],
        "additionalProperties": False}},
        "type": "object", "properties": {"home": {"$ref": "#/$defs/addr"}, "work": {"$ref": "#/$defs/addr"}},
        "required": ["home", "work"], "additionalProperties": False},
    "anyof": {"type": "object", "properties": {"value": {"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 20}]},
                                               "ok": {"type": "boolean"}},
              "required": ["value", "ok"], "additionalProperties": False},
    "optional_fields": {"type": "object", "properties": {"q": {"type": "string", "maxLength": 30},
                                                         "limit": {"type": "integer"}, "lang": {"enum": ["en", "fr"]}},
                        "required": ["q"], "additionalProperties": False},
    "code": {"type": "object", "properties": {"sku": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
                                              "qty": {"type": "integer"}},
             "required": ["sku", "qty"], "additionalProperties": False},
}
TOOLSETS = [
    [("get_weather", SCHEMAS["optional_fields"]), ("get_time", {"type": "object", "properties": {"tz": {"type": "string", "maxLength": 40}}, "required": ["tz"]})],
    [("create_event", SCHEMAS["event"]), ("lookup_person", SCHEMAS["person"])],
    [("order", SCHEMAS["code"]), ("refund", SCHEMAS["receipt"]), ("ping", None)],
    [("classify", SCHEMAS["sentiment"]), ("route", SCHEMAS["nested_refs"]), ("set", SCHEMAS["anyof"])],
]
PROMPTS = [
    "Paris, tomorrow, in French please.",
    "Alice (34) and Bob are meeting on 2026-12-01 to plan the launch.",
    "HARBOR BAKERY. Sourdough 6.50, Croissant 3.00, Coffee 3.00. TOTAL 12.50",
    "I absolutely loved this product, it works great!",
    "Order three units of ABC-1234 and ship to Berlin 10115; office in Munich.",
]
MODES = ["required", "named", "auto", "json_object", "json_schema"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tool(name, schema):
    f = {"name": name, "description": f"The {name.replace('_', ' ')} function."}
    if schema:
        f["parameters"] = schema
    return {"type": "function", "function": f}


def request_for(i: int, max_tokens: int) -> tuple[str, dict, dict]:
    mode = MODES[i % len(MODES)]
    prompt = PROMPTS[(i // len(MODES)) % len(PROMPTS)]
    body = {"model": "omnimini-mini", "max_tokens": max_tokens, "seed": i, "temperature": 0.7,
            "messages": [{"role": "user", "content": prompt}]}
    schemas: dict = {}
    if mode in ("required", "named", "auto"):
        toolset = TOOLSETS[i % len(TOOLSETS)]
        body["tools"] = [tool(n, s) for n, s in toolset]
        schemas = {n: s or {"type": "object", "maxProperties": 0} for n, s in toolset}
        if mode == "named":
            name = toolset[i % len(toolset)][0]
            body["tool_choice"] = {"type": "function", "function": {"name": name}}
            schemas = {name: schemas[name]}
        else:
            body["tool_choice"] = mode
    elif mode == "json_object":
        body["response_format"] = {"type": "json_object"}
    else:
        name, schema = list(SCHEMAS.items())[i % len(SCHEMAS)]
        body["response_format"] = {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}
        schemas = {"content": schema}
    return mode, body, schemas


def check(mode: str, body: dict, schemas: dict, resp: dict) -> tuple[bool, str]:
    choice = resp["choices"][0]
    msg = choice["message"]
    try:
        if mode in ("json_object", "json_schema"):
            value = json.loads(msg["content"])
            if mode == "json_object" and not isinstance(value, dict):
                return False, "not an object"
            if mode == "json_schema":
                jsonschema.validate(value, schemas["content"])
            return True, ""
        calls = msg.get("tool_calls") or []
        if mode == "auto" and not calls:
            return ("<tool_call>" not in (msg["content"] or "")), "text answer"
        if not calls:
            return False, "no call"
        for c in calls:
            if c["function"]["name"] not in schemas:
                return False, f"unknown function {c['function']['name']}"
            jsonschema.validate(json.loads(c["function"]["arguments"]), schemas[c["function"]["name"]])
        return True, ""
    except (json.JSONDecodeError, jsonschema.ValidationError, TypeError) as e:
        return False, f"{type(e).__name__}: {str(e)[:120]} (finish_reason={choice['finish_reason']})"


def decode_rate(client: httpx.Client, body: dict) -> tuple[int, float]:
    """Completion tokens and seconds from first to last token, over the streaming API."""
    first = last = None
    with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True,
                                                           "stream_options": {"include_usage": True}}) as r:
        usage = None
        for line in r.iter_lines():
            if not line.startswith("data: {"):
                continue
            event = json.loads(line[6:])
            if event.get("usage"):
                usage = event["usage"]
            if event["choices"] and (event["choices"][0]["delta"].get("content") or event["choices"][0]["delta"].get("tool_calls")):
                now = time.perf_counter()
                first = first or now
                last = now
    return usage["completion_tokens"], (last - first) if first and last else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=200)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=300)
    ap.add_argument("--speed-prompts", type=int, default=5)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    port = free_port()
    data = tempfile.mkdtemp()
    server = subprocess.Popen([sys.executable, "-m", "omnimini", "serve", "--port", str(port), "--threads",
                               str(args.threads), "--data-dir", data, "--log-level", "warning"])
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600)
        for _ in range(300):
            try:
                if client.get("/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        results: dict[str, list[bool]] = {m: [] for m in MODES}
        failures = []
        calls_made = 0
        for i in range(args.requests):
            mode, body, schemas = request_for(i, args.max_tokens)
            resp = client.post("/v1/chat/completions", json=body)
            if resp.status_code != 200:
                results[mode].append(False)
                failures.append((i, mode, f"HTTP {resp.status_code}: {resp.text[:200]}"))
                continue
            ok, why = check(mode, body, schemas, resp.json())
            results[mode].append(ok)
            calls_made += len(resp.json()["choices"][0]["message"].get("tool_calls") or [])
            if not ok:
                failures.append((i, mode, why))
            print(f"\r{i + 1}/{args.requests} requests", end="", file=sys.stderr, flush=True)
        print(file=sys.stderr)
        print("validity (share of outputs that parse and validate):")
        for m in MODES:
            r = results[m]
            print(f"  {m:12s} {sum(r)}/{len(r)} = {100 * sum(r) / max(1, len(r)):.1f}%")
        print(f"  tool calls made: {calls_made}")
        for f in failures[:10]:
            print("  failure:", f)

        # Speed: the same prompts greedy, with end-of-turn banned so both sides run to max_tokens.
        ban = {"0": -100, "2": -100}
        rates = {"unconstrained": [], "json_schema": [], "required": []}
        for prompt in PROMPTS[:args.speed_prompts]:
            base = {"model": "omnimini-mini", "temperature": 0, "max_tokens": 150,
                    "messages": [{"role": "user", "content": prompt}]}
            for kind in rates:
                body = dict(base)
                if kind == "unconstrained":
                    body["logit_bias"] = ban
                elif kind == "json_schema":
                    body["response_format"] = {"type": "json_schema", "json_schema": {"name": "r", "schema": {
                        "type": "object", "properties": {"notes": {"type": "array", "items": {"type": "string"}}},
                        "required": ["notes"]}}}
                    body["logit_bias"] = ban
                else:
                    body["tools"] = [tool(n, s) for n, s in TOOLSETS[0]]
                    body["tool_choice"] = "required"
                    body["logit_bias"] = ban
                tokens, secs = decode_rate(client, body)
                if secs > 0:
                    rates[kind].append((tokens - 1) / secs)
        med = {k: statistics.median(v) for k, v in rates.items() if v}
        print("decode tokens/s (median over prompts, streaming HTTP):")
        for k, v in med.items():
            print(f"  {k:14s} {v:7.1f}  ratio {v / med['unconstrained']:.2f}")
        print(f"constrained/unconstrained: json_schema {med['json_schema'] / med['unconstrained']:.2f}, "
              f"tools {med['required'] / med['unconstrained']:.2f} (target >= 0.80)")
        if args.json:
            with open(args.json, "w") as f:
                json.dump({"validity": {m: [sum(r), len(r)] for m, r in results.items()},
                           "failures": failures, "tokens_per_s": med}, f, indent=1)
    finally:
        server.terminate()
        server.wait(10)


if __name__ == "__main__":
    main()
