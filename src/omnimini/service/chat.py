"""The one pipeline for a chat completion: request -> conversation -> prompt -> engine -> response.

HTTP routes, the CLI chat, and later the batch worker, the arena and the voice loop all call
`ChatService`. `prepare` does every check that can fail on client input, so a streaming route can
still answer with a 4xx before its first byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from dataclasses import dataclass
from typing import AsyncIterator

import llama_cpp
import numpy as np

from omnimini.access.context import admit, report
from omnimini.engine.base import Engine, EngineError, Hold, SamplingParams, Step, TokenInfo
from omnimini.engine.template import TemplateRenderError
from omnimini.hierarchy.conversation import Turn, conversation
from omnimini.hierarchy.guard import LeakGuard
from omnimini.hierarchy.levels import Level
from omnimini.models.catalog import Catalog, ModelSpec
from omnimini.protocol.chat import (ChatCompletion, ChatCompletionChunk, ChatCompletionRequest,
                                    Choice, ChoiceLogprobs, ChunkChoice, Delta, DeltaFunctionCall,
                                    DeltaToolCall, ResponseFunctionCall, ResponseMessage,
                                    ResponseToolCall, TokenLogprob, TopLogprob)
from omnimini.protocol.common import Usage
from omnimini.protocol.errors import InvalidRequest, Unsupported
from omnimini.service.engines import Engines
from omnimini.service.ids import fingerprint, new_id, now
from omnimini.service.merge import interleave
from omnimini.service.params import check_stream_options, completion_budget, sampling_params
from omnimini.service.structured import response_grammar
from omnimini.service.audio_reply import check_audio_request, wants_audio
from omnimini.service.tools import CallEvent, CallParser, ToolPlan, check_tool_messages, plan_tools
from omnimini.hierarchy.render import DATAMARK, fold_tool_results
from omnimini.service.hierarchy import (defend, guard_calls, guard_final, guard_logprobs,   # issue 7: hierarchy
                                        guard_stream)


@dataclass
class PreparedChat:
    request: ChatCompletionRequest
    spec: ModelSpec
    engine: Engine
    prompt: list[int]
    params: list[SamplingParams]          # one per choice
    tools: ToolPlan | None
    id: str
    created: int
    fingerprint: str
    guard: LeakGuard | None = None        # the output guard of the instruction hierarchy, if on
    unmark: bool = False                  # datamarks the model copies from tool data become spaces
    hold: Hold | None = None              # queue room held since admission (engine/base.py)
    refusal: str | None = None            # the jailbreak screen's answer: the model is not run

    @property
    def expects_no_prose(self) -> bool:
        """A client that expects no prose gets a refusal in `message.refusal` (streamed: `delta.refusal`)
        and null content, as OpenAI does: structured output (a JSON parser never reads prose), and a
        forced tool call (tool_choice `required` or named: the client looks for calls and finds none, and
        `refusal` says why, instead of text it never asked for). This holds for the jailbreak screen's
        refusal and for the output guard's replacement alike."""
        fmt = self.request.response_format
        forced = self.tools is not None and self.tools.mode != "auto"
        return forced or (fmt is not None and fmt.type != "text")

    @property
    def refusal_field(self) -> bool:
        """Refused before generation, to a client that expects no prose."""
        return bool(self.refusal) and self.expects_no_prose

    @property
    def include_usage(self) -> bool:
        return bool(self.request.stream_options and self.request.stream_options.include_usage)

    def parser(self) -> CallParser | None:
        if not self.tools or self.refusal:
            return None
        if self.tools.mode != "auto":
            return CallParser(content_allowed=False)
        return CallParser(schemas={t.function.name: t.function.parameters or {} for t in self.tools.tools})

    def finish_reason(self, step: Step, parser: CallParser | None) -> str:
        if parser and parser.calls and step.finish_reason == "stop":
            return self.tools.finish_reason
        return step.finish_reason


def _reject_unsupported(req: ChatCompletionRequest) -> None:
    """OpenAI parameters whose effect we cannot deliver yet: a clear 400, never silent neglect."""
    if req.functions or req.function_call not in (None, "none"):
        raise Unsupported("'functions' is deprecated and not supported; use 'tools'.", param="functions")
    check_audio_request(req)      # modalities ["text", "audio"] (issue 9): service/audio_reply.py
    for name in ("prediction", "web_search_options", "reasoning_effort", "verbosity", "moderation"):
        if getattr(req, name) is not None:
            raise Unsupported(f"Unsupported parameter: '{name}' is not supported with this model.",
                              param=name)
    if req.top_logprobs is not None and not req.logprobs:
        raise InvalidRequest("'top_logprobs' requires 'logprobs' to be true.", param="top_logprobs")


def _with_tools(turns: list[Turn], plan: ToolPlan) -> list[Turn]:
    """The tool definitions are developer-provided instructions: they join the system message."""
    text = plan.system_text()
    if turns and turns[0].role == "system":
        first = turns[0]
        return [dataclasses.replace(first, content=f"{first.content}\n\n{text}"), *turns[1:]]
    return [Turn(role="system", content=text, level=Level.SYSTEM), *turns]


async def _check_length(engine: Engine, turns: list[Turn]) -> None:
    """A 400 `context_length_exceeded` for a conversation whose text alone cannot fit the context,
    before the hierarchy's screens embed it: a request body of megabytes would otherwise cost
    minutes of MiniLM time (and hold the embedder's lock) only to be refused afterwards. The text
    alone is a lower bound of the prompt (no template, no markers), so nothing that fits is refused
    here; the exact check on the rendered prompt follows (completion_budget)."""
    chars = sum(len(t.content) for t in turns)
    if chars < engine.n_ctx:          # short text is cheap to screen, whatever it tokenizes to
        return
    tokens = await asyncio.to_thread(lambda: sum(len(engine.tokenize(t.content)) for t in turns))   # off the loop
    completion_budget(engine, tokens, None, "max_tokens")


def _logprob_entry(t: TokenInfo) -> TokenLogprob:
    return TokenLogprob(token=t.token, logprob=t.logprob, bytes=list(t.bytes),
                        top_logprobs=[TopLogprob(token=s, logprob=lp, bytes=list(b)) for s, b, lp in t.top])


def _call_arguments(events: list[CallEvent]) -> list[str]:
    """Each call's whole arguments, from its streamed events."""
    args: dict[int, str] = {}
    for e in events:
        args[e.index] = args.get(e.index, "") + e.arguments
    return list(args.values())


def _delta_calls(events: list[CallEvent]) -> list[DeltaToolCall]:
    return [DeltaToolCall(index=e.index, id=e.id, type="function",
                          function=DeltaFunctionCall(name=e.name, arguments=""))
            if e.id else DeltaToolCall(index=e.index, function=DeltaFunctionCall(arguments=e.arguments))
            for e in events]


class ChatService:
    def __init__(self, catalog: Catalog, engines: Engines):
        self.catalog = catalog
        self.engines = engines
        self.media = None        # input_audio/image_url parts -> text (issue 9): service/media.py
        self.audio_reply = None  # spoken replies (issue 9): service/audio_reply.py

    async def prepare(self, req: ChatCompletionRequest) -> PreparedChat:
        """Validate and render the request, then admit it: queue room, the key's limits."""
        p = await self.render(req)
        # Queue room is held from here until the generations are submitted (engine/base.py Hold). A
        # refused request runs no generation, so it takes none (it still counts against the key's limits).
        p.hold = None if p.refusal else p.engine.check_capacity(len(p.params))
        try:
            await admit(p.spec, len(p.prompt), sum(x.max_tokens for x in p.params))   # key's models, RPM/TPM
        except BaseException:
            if p.hold:
                p.hold.release()
            raise
        return p

    async def render(self, req: ChatCompletionRequest) -> PreparedChat:
        """Everything before admission: validation, template, prompt tokens, sampling parameters.
        Token counting stops here: it takes no slot and spends no rate limit."""
        _reject_unsupported(req)
        check_stream_options(req)
        plan = plan_tools(req)
        check_tool_messages(req)
        grammar = response_grammar(req)
        if plan and grammar:
            raise Unsupported("A 'response_format' other than text cannot be combined with tool calls; "
                              "set tool_choice to 'none' or drop response_format.", param="response_format")
        spec = self.catalog.resolve(req.model, kind="chat")
        engine = await self.engines.chat(spec)
        images: dict[str, np.ndarray] | None = {} if engine.vision is not None else None  # native
        turns = conversation(req.messages, await self.media.read(req.messages, images) if self.media else None)
        await _check_length(engine, turns)      # before the screens: their work is bounded by the context, not the body
        defended = await defend(turns, spec, self.catalog, self.engines)   # policy, screening, spotlighting
        turns = defended.turns
        if spec.tool_results == "inline":     # a model that answers a tool result only in the user's turn
            turns = fold_tool_results(turns, spotlit=defended.policy.spotlight)
        if plan:
            turns = _with_tools(turns, plan)
        try:
            if images:      # the images are encoded now: off the event loop
                prompt = await asyncio.to_thread(engine.chat_tokens, [t.template_dict() for t in turns], images)
            else:
                prompt = engine.chat_tokens([t.template_dict() for t in turns])
        except TemplateRenderError as e:
            raise InvalidRequest(str(e), param="messages") from e
        except EngineError as e:        # only the image path raises it here
            raise InvalidRequest(f"This model could not take the image: {e}", param="messages",
                                 code="invalid_image") from e
        budget = completion_budget(engine, len(prompt), req.completion_limit,
                                   "max_completion_tokens" if req.max_completion_tokens else "max_tokens")
        params = []
        for i in range(req.n or 1):
            p = sampling_params(req, engine, spec, budget, seed_offset=i, logprobs=bool(req.logprobs),
                                top_logprobs=req.top_logprobs or 0)
            if plan:
                p = dataclasses.replace(p, grammar=plan.grammar, grammar_trigger=plan.trigger)
            elif grammar:
                p = dataclasses.replace(p, grammar=grammar)
            params.append(p)
        return PreparedChat(req, spec, engine, prompt, params, plan, new_id("chatcmpl-"), now(),
                            fingerprint(spec.id, "llama.cpp", llama_cpp.__version__), guard=defended.guard,
                            unmark=defended.unmark, refusal=defended.refusal)

    async def _generations(self, p: PreparedChat) -> AsyncIterator[tuple[int, Step]]:
        if p.refusal:         # refused before generation: every choice is the refusal, no tokens spent
            if p.hold:
                p.hold.release()
            for i in range(len(p.params)):
                yield i, Step(text=p.refusal, finish_reason="stop", prompt_tokens=len(p.prompt))
            return
        steps = interleave([p.engine.generate(p.prompt, params, p.hold) for params in p.params])
        async with contextlib.aclosing(steps):           # a client gone: the generations stop now
            async for i, step in steps:
                if p.unmark and DATAMARK in step.text:   # before the tool-call parser and the guard
                    step = dataclasses.replace(step, text=step.text.replace(DATAMARK, " "))
                yield i, step

    async def complete(self, p: PreparedChat) -> ChatCompletion:
        n = len(p.params)
        texts = [""] * n
        logprobs: list[list[TokenLogprob]] = [[] for _ in range(n)]
        finals: list[Step | None] = [None] * n
        async for i, step in self._generations(p):
            texts[i] += step.text
            logprobs[i] += [_logprob_entry(t) for t in step.tokens]
            if step.finish_reason:
                finals[i] = step
        choices = []
        for i in range(n):
            parser = p.parser()
            content, calls = texts[i], None
            if parser:
                content, _ = parser.feed(texts[i])
                content += parser.finish()[0]
                calls = [ResponseToolCall(id=c.id, function=ResponseFunctionCall(name=c.name, arguments=c.arguments))
                         for c in parser.calls] or None
                if calls:       # text the model wrote before its calls, if any
                    content = content.strip() or None
            said = content
            content = guard_final(p.guard, content, i)     # a leak becomes a refusal
            finish = p.finish_reason(finals[i], parser)
            leaked = guard_calls(p.guard, [c.function.arguments for c in calls], i) if calls else None
            if leaked:                  # no call carries it out either
                content, calls, finish = p.guard.replacement(leaked), None, "stop"
            elif content is not said and calls:     # the text before the calls leaked: the answer is the
                calls, finish = None, "stop"        # refusal alone, as when streamed
            # Logprobs describe the tokens the answer shows: none of a replaced one.
            shown = None if content is not said else guard_logprobs(p.guard, logprobs[i])
            if p.refusal_field:
                message = ResponseMessage(content=None, refusal=p.refusal)
            elif (content is not said or leaked) and p.expects_no_prose:     # the guard's replacement
                message = ResponseMessage(content=None, refusal=content)
            else:
                message = ResponseMessage(content=content, tool_calls=calls)
            choices.append(Choice(
                index=i, message=message,
                logprobs=ChoiceLogprobs(content=shown) if p.request.logprobs else None,
                finish_reason=finish))
        usage = report(_usage(p, finals))     # metering and the TPM settlement
        completion = ChatCompletion(id=p.id, created=p.created, model=p.spec.id, choices=choices,
                                    usage=usage, system_fingerprint=p.fingerprint)
        if self.audio_reply and wants_audio(p.request):
            return await self.audio_reply.complete(p.request, completion)
        return completion

    def stream(self, p: PreparedChat) -> AsyncIterator[ChatCompletionChunk]:
        if self.audio_reply and wants_audio(p.request):       # text deltas become speech (issue 9)
            return self.audio_reply.stream(p.request, self._text_stream(p))
        return self._text_stream(p)

    async def _text_stream(self, p: PreparedChat) -> AsyncIterator[ChatCompletionChunk]:
        def chunk(choices: list[ChunkChoice], usage: Usage | None = None) -> ChatCompletionChunk:
            return ChatCompletionChunk(id=p.id, created=p.created, model=p.spec.id, choices=choices,
                                       system_fingerprint=p.fingerprint, usage=usage)

        n = len(p.params)
        parsers = [p.parser() for _ in range(n)]
        guards = [guard_stream(p.guard, i) for i in range(n)]      # held back until checked clean
        for i in range(n):
            yield chunk([ChunkChoice(index=i, delta=Delta(role="assistant", content="", refusal=None))])
        finals: list[Step | None] = [None] * n
        latest: list[Step | None] = [None] * n     # running counts, for a client that leaves early
        # Under the output guard, logprobs and tool calls wait for the end of their choice: they say
        # what the held-back text says (a token's logprob entry names the token), and a call's
        # arguments are checked whole before any of them goes out.
        guarded = p.guard is not None
        held_lp: list[list[TokenLogprob]] = [[] for _ in range(n)]
        held_calls: list[list[CallEvent]] = [[] for _ in range(n)]
        try:
            async for i, step in self._generations(p):
                latest[i] = step
                entries = [_logprob_entry(t) for t in step.tokens] if p.request.logprobs else []
                if guarded:
                    held_lp[i] += entries
                lp = ChoiceLogprobs(content=entries) if entries and not guarded else None
                text, events = step.text, []
                if parsers[i]:
                    text, events = parsers[i].feed(step.text)
                    if step.finish_reason:
                        rest, more = parsers[i].finish()
                        text, events = text + rest, events + more
                if guarded and events:
                    held_calls[i] += events
                    events = []
                clean = not guards[i].tripped
                text = guards[i].feed(text) + (guards[i].finish() if step.finish_reason else "")
                replaced = clean and guards[i].tripped      # this text is the guard's replacement
                if text and (p.refusal_field or (replaced and p.expects_no_prose)):
                    yield chunk([ChunkChoice(index=i, delta=Delta(refusal=text.lstrip("\n") if replaced else text))])
                elif text or (lp and not events):
                    yield chunk([ChunkChoice(index=i, delta=Delta(content=text), logprobs=lp)])
                    lp = None
                if events:
                    yield chunk([ChunkChoice(index=i, delta=Delta(tool_calls=_delta_calls(events)), logprobs=lp)])
                if step.finish_reason:
                    finals[i] = step
                    finish = p.finish_reason(step, parsers[i])
                    if guarded and not guards[i].tripped:
                        leaked = guard_calls(p.guard, _call_arguments(held_calls[i]), i) if held_calls[i] else None
                        if leaked:
                            instead = p.guard.replacement(leaked)
                            yield chunk([ChunkChoice(index=i, delta=Delta(refusal=instead) if p.expects_no_prose
                                                     else Delta(content=instead))])
                            held_lp[i], finish = [], "stop"
                        elif held_calls[i]:
                            yield chunk([ChunkChoice(index=i, delta=Delta(tool_calls=_delta_calls(held_calls[i])))])
                        if held_lp[i]:
                            yield chunk([ChunkChoice(index=i, delta=Delta(content=""), logprobs=ChoiceLogprobs(
                                content=guard_logprobs(p.guard, held_lp[i])))])
                    elif guarded and held_calls[i]:
                        finish = "stop"           # the answer became the refusal: no call goes out
                    yield chunk([ChunkChoice(index=i, delta=Delta(), finish_reason=finish)])
        finally:
            if any(f is None for f in finals):      # cut short: bill what was generated
                report(_usage(p, [f or s for f, s in zip(finals, latest)]))
        usage = report(_usage(p, finals))     # metering and the TPM settlement
        if p.include_usage:
            yield chunk([], usage=usage)

    async def create(self, req: ChatCompletionRequest) -> ChatCompletion:
        """Non-streaming convenience for in-process callers (CLI, batch worker, evals)."""
        return await self.complete(await self.prepare(req))


def _usage(p: PreparedChat, finals: list[Step | None]) -> Usage:
    # The prompt is billed once for all n choices, as OpenAI does.
    done = [f for f in finals if f is not None]
    return Usage.of(prompt=len(p.prompt), completion=sum(f.completion_tokens for f in done),
                    cached=done[0].cached_tokens if done else 0)
