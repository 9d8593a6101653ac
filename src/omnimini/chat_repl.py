"""`omnimini chat`: a terminal conversation that streams tokens and keeps its history.

It talks to the in-process service (the same pipeline as the HTTP API) or, with --base-url, to any
OpenAI-compatible server over HTTP.
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

import httpx
from rich.console import Console

from omnimini.protocol.chat import ChatCompletionRequest
from omnimini.protocol.errors import APIError
from omnimini.settings import Settings

HELP = "Commands: /system TEXT sets the system prompt, /reset clears the history, /exit quits."


async def _local_deltas(runtime: Any, body: dict[str, Any]) -> AsyncIterator[str]:
    prepared = await runtime.chat.prepare(ChatCompletionRequest.model_validate(body))
    async for chunk in runtime.chat.stream(prepared):
        for choice in chunk.choices:
            if choice.delta.content:
                yield choice.delta.content


async def _remote_deltas(client: httpx.AsyncClient, body: dict[str, Any]) -> AsyncIterator[str]:
    async with client.stream("POST", "/chat/completions", json=body) as r:
        if r.status_code >= 400:
            detail = json.loads(await r.aread()).get("error", {}).get("message", r.status_code)
            raise RuntimeError(f"server said: {detail}")
        async for line in r.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[len("data: "):])
            if "error" in event:
                raise RuntimeError(event["error"].get("message"))
            for choice in event.get("choices", []):
                if choice["delta"].get("content"):
                    yield choice["delta"]["content"]


async def run_repl(settings: Settings, *, model: str, system: str | None, base_url: str | None,
                   api_key: str, temperature: float | None, max_tokens: int | None,
                   console: Console) -> None:
    runtime = client = None
    if base_url:
        client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=None,
                                   headers={"Authorization": f"Bearer {api_key}"})
    else:
        from omnimini.service.runtime import Runtime
        runtime = Runtime.build(settings.catalog(), data_dir=settings.data_path,
                                n_threads=settings.threads, context_size=settings.context_size)
    history: list[dict[str, str]] = []
    console.print(f"[dim]Chatting with {model}. {HELP}[/dim]")
    try:
        while True:
            try:
                line = console.input("[bold green]you>[/bold green] ")
            except (EOFError, KeyboardInterrupt):
                break
            text = line.strip()
            if not text:
                continue
            if text in ("/exit", "/quit"):
                break
            if text == "/reset":
                history.clear()
                console.print("[dim]history cleared[/dim]")
                continue
            if text.startswith("/system"):
                system = text[len("/system"):].strip() or None
                console.print(f"[dim]system prompt {'set' if system else 'cleared'}[/dim]")
                continue
            if text.startswith("/"):
                console.print(f"[dim]{HELP}[/dim]")
                continue
            history.append({"role": "user", "content": text})
            body: dict[str, Any] = {"model": model, "stream": True,
                                    "messages": ([{"role": "system", "content": system}] if system else []) + history}
            if temperature is not None:
                body["temperature"] = temperature
            if max_tokens is not None:
                body["max_tokens"] = max_tokens
            answer = ""
            console.print("[bold blue]assistant>[/bold blue] ", end="")
            try:
                deltas = _remote_deltas(client, body) if client else _local_deltas(runtime, body)
                async for delta in deltas:
                    answer += delta
                    console.print(delta, end="", markup=False, highlight=False, soft_wrap=True)
            except (APIError, RuntimeError, httpx.HTTPError) as e:
                history.pop()
                console.print(f"\n[red]error:[/red] {getattr(e, 'message', e)}")
                continue
            console.print()
            history.append({"role": "assistant", "content": answer})
    finally:
        if client:
            await client.aclose()
        if runtime:
            await runtime.close()
