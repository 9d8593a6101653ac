"""Token counting for applications: what a chat request will be billed, before sending it.

`POST /v1/chat/completions/input_tokens` takes a chat completion body and answers
`{"object": "response.input_tokens", "input_tokens": N}`, as OpenAI's `POST /v1/responses/input_tokens`
does for the Responses API. N equals the `usage.prompt_tokens` of the same request (docs/tokens.md).
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from omnimini.protocol.chat import ChatCompletionRequest
from omnimini.tokens.chat_count import input_token_count

router = APIRouter()


@router.post("/v1/chat/completions/input_tokens")
async def chat_input_tokens(req: ChatCompletionRequest, request: Request):
    return (await input_token_count(request.app.state.runtime.chat, req)).model_dump()
