"""Count a chat completion request's prompt tokens exactly as the server bills them.

No templating of our own: the request goes through `ChatService.render`, the one pipeline's
preparation short of admission (validation, tool definitions joining the system message, the model's chat template,
tokenization), and the count is the length of the prompt it would decode, which is what
`usage.prompt_tokens` reports. Nothing is generated. A request the server would refuse (unknown
model, prompt longer than the context, bad tools) raises the same APIError it would get there.
"""

from __future__ import annotations

from omnimini.protocol.chat import ChatCompletionRequest
from omnimini.protocol.tokens import InputTokenCount
from omnimini.service.chat import ChatService


async def count_chat_tokens(chat: ChatService, request: ChatCompletionRequest) -> int:
    prepared = await chat.render(request)
    return len(prepared.prompt)


async def input_token_count(chat: ChatService, request: ChatCompletionRequest) -> InputTokenCount:
    return InputTokenCount(input_tokens=await count_chat_tokens(chat, request))
