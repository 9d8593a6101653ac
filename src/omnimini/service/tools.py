"""Function calling: tools in the prompt, a grammar that makes every call valid, and a parser that
turns the model's output back into OpenAI `tool_calls`, streamed or whole.

Calls are written in the Hermes / Qwen2.5 format, which Qwen models are trained on and which we
describe to other models in the system prompt:

    <tool_call>
    {"name": "get_weather", "arguments": {"city": "Paris"}}
    </tool_call>

With tool_choice `required` or a named function the whole output is constrained to such calls.
With `auto` the model writes freely, and the grammar takes over from the moment it opens a call
(llama.cpp's lazy grammar), so that a call, when made, is valid.

Some models trained on this format still write a call in `auto` mode as bare JSON, without the tag
(Qwen2.5-Coder-0.5B does: `{"name": "get_weather", "arguments": {...}}`). As llama.cpp's Hermes
parser and vLLM's JSON tool parsers do, an answer that *begins* with such an object (alone, one per
line, a list of them, or in a ```json fence) is taken as calls, but only when every object names a
given function and its arguments validate against that function's schema; anything else stays text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import jsonschema

from omnimini.engine.grammar import GrammarBuilder, SchemaError
from omnimini.engine.textstream import partial_marker_suffix
from omnimini.hierarchy.tool_format import ARGS_KEY, CALL_CLOSE, CALL_HEAD, CALL_OPEN, CALL_TAIL
from omnimini.protocol.chat import ChatCompletionRequest, NamedToolChoice, Tool
from omnimini.protocol.errors import InvalidRequest
from omnimini.service.ids import new_id

MAX_PARALLEL_CALLS = 8
# Lazy grammar trigger (llama.cpp matches the whole text so far; group 1 is where the grammar starts).
AUTO_TRIGGER = r"[\s\S]*?(<tool_call>)[\s\S]*"

TOOLS_SYSTEM_PROMPT = """# Tools

You may call one or more functions to help with the user's request. The functions, as JSON Schema:
<tools>
{tools}
</tools>

To call a function, write a JSON object with its name and arguments inside <tool_call></tool_call> tags:
<tool_call>
{{"name": <function-name>, "arguments": <args-json-object>}}
</tool_call>"""

CALL_ID_LENGTH = 24           # OpenAI's call ids: "call_" and 24 characters
# A bare-JSON answer may come in a Markdown fence (```json ... ```).
FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)
FENCE_OPEN = "```"


@dataclass
class ToolPlan:
    mode: str                             # "auto" | "required" | "named"
    tools: list[Tool]
    grammar: str
    trigger: str | None                   # set for auto: the grammar starts at the first call
    finish_reason: str                    # "tool_calls", or "stop" for a named function (as OpenAI)

    def system_text(self) -> str:
        return TOOLS_SYSTEM_PROMPT.format(tools="\n".join(json.dumps(tool_spec(t)) for t in self.tools))


def tool_spec(tool: Tool) -> dict[str, Any]:
    f = tool.function
    spec: dict[str, Any] = {"type": "function", "function": {"name": f.name}}
    if f.description:
        spec["function"]["description"] = f.description
    spec["function"]["parameters"] = f.parameters or {"type": "object", "properties": {}}
    return spec


def plan_tools(req: ChatCompletionRequest) -> ToolPlan | None:
    """Validate tools and tool_choice; None when no tool may be called."""
    tools = req.tools or []
    choice = req.tool_choice
    if not tools:
        if choice not in (None, "none"):
            raise InvalidRequest("'tool_choice' is only allowed when 'tools' are specified.", param="tool_choice")
        return None
    names = [t.function.name for t in tools]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidRequest(f"Duplicate function names in 'tools': {', '.join(dupes)}.", param="tools")
    if choice == "none":
        return None
    chosen = tools
    if isinstance(choice, NamedToolChoice):
        chosen = [t for t in tools if t.function.name == choice.function.name]
        if not chosen:
            raise InvalidRequest(f"Invalid 'tool_choice': no function named '{choice.function.name}' in "
                                 "'tools'.", param="tool_choice")
    mode = "named" if isinstance(choice, NamedToolChoice) else (choice or "auto")
    parallel = req.parallel_tool_calls is not False and mode != "named"
    return ToolPlan(mode=mode, tools=tools, grammar=_calls_grammar(chosen, parallel),
                    trigger=AUTO_TRIGGER if mode == "auto" else None,
                    finish_reason="stop" if mode == "named" else "tool_calls")


def _calls_grammar(tools: list[Tool], parallel: bool) -> str:
    b = GrammarBuilder()
    alternatives = []
    for i, tool in enumerate(tools):
        params = tool.function.parameters
        try:
            args = b.schema(params, f"fn{i}-args") if params else b.rule(f"fn{i}-args", '"{" space "}" space')
        except SchemaError as e:
            raise InvalidRequest(f"Invalid schema for function '{tool.function.name}': {e}",
                                 param=f"tools[{i}].function.parameters") from e
        head = b.literal(json.dumps(tool.function.name) + ARGS_KEY)
        alternatives.append(b.rule(f"fn{i}", f"{head} {args}"))
    b.rule("space", '" "?')
    call = b.rule("call", f"{b.literal(CALL_HEAD)} ( {' | '.join(alternatives)} ) {b.literal(CALL_TAIL)}")
    more = f' ( "\\n" {call} ){{0,{MAX_PARALLEL_CALLS - 1}}}' if parallel else ""
    return b.gbnf(call + more)


def check_tool_messages(req: ChatCompletionRequest) -> None:
    """Every `tool` message answers a call made by an earlier assistant message."""
    known: set[str] = set()
    for i, m in enumerate(req.messages):
        if m.role == "assistant" and m.tool_calls:
            known |= {c.id for c in m.tool_calls}
        elif m.role == "tool" and m.tool_call_id not in known:
            raise InvalidRequest(f"Invalid parameter: messages with role 'tool' must be a response to a "
                                 f"preceding message with 'tool_calls'; no call has id '{m.tool_call_id}'.",
                                 param=f"messages[{i}].tool_call_id")


# ------------------------------------------------------------------ parsing the output


@dataclass
class CallEvent:
    index: int
    id: str | None = None                 # set on the first event of a call, with the name
    name: str | None = None
    arguments: str = ""


@dataclass
class CallParser:
    """Feed output text as it streams; get content text and call events back.

    The grammar guarantees the call syntax, so parsing follows it literally; `auto` output before
    the first call is content (a partial `<tool_call>` is held back until it is decided)."""

    content_allowed: bool = True
    # auto mode: the functions by name with their parameter schemas, for answers that are bare JSON
    # calls (module docstring); None turns that off.
    schemas: dict[str, dict[str, Any]] | None = None
    calls: list[CallEvent] = field(default_factory=list)
    _buf: str = ""
    _state: str = "content"               # content | bare | head | args | tail
    _started: bool = False                # the answer's first non-blank character has been seen
    _depth: int = 0
    _in_string: bool = False
    _escape: bool = False

    def feed(self, text: str) -> tuple[str, list[CallEvent]]:
        self._buf += text
        content, events = "", []
        while self._buf:
            if self._state == "bare":             # held whole: decided when the answer ends
                break
            if self._state == "content" and not self._started and self.schemas is not None:
                head = self._buf.lstrip()
                if not head or (FENCE_OPEN.startswith(head) and len(head) < len(FENCE_OPEN)):
                    break                         # not decided yet: hold the blanks (or a partial fence)
                self._started = True
                if head.startswith(("{", "[", FENCE_OPEN)):
                    self._state = "bare"
                    break
            if self._state == "content":
                at = self._buf.find(CALL_OPEN)
                if at < 0:
                    keep = partial_marker_suffix(self._buf, (CALL_OPEN,))
                    content += self._buf[:len(self._buf) - keep]
                    self._buf = self._buf[len(self._buf) - keep:]
                    break
                content += self._buf[:at]
                self._buf = self._buf[at:]
                self._state = "head"
            elif self._state == "head":
                end = self._buf.find(ARGS_KEY)
                if end < 0:
                    break
                name = json.loads(self._buf[len(CALL_HEAD):end])
                self._buf = self._buf[end + len(ARGS_KEY):]
                event = CallEvent(index=len(self.calls), id=new_id("call_", CALL_ID_LENGTH), name=name)
                self.calls.append(CallEvent(index=event.index, id=event.id, name=name))
                events.append(event)
                self._state, self._depth, self._in_string, self._escape = "args", 0, False, False
            elif self._state == "args":
                taken = self._scan_args()
                if taken:
                    fragment = self._buf[:taken]
                    self._buf = self._buf[taken:]
                    self.calls[-1].arguments += fragment
                    events.append(CallEvent(index=self.calls[-1].index, arguments=fragment))
                if self._depth == 0 and self.calls[-1].arguments:
                    self.calls[-1].arguments = self.calls[-1].arguments.strip()
                    self._state = "tail"
                elif not taken:
                    break
            else:   # tail: "}\n</tool_call>" then optional "\n" before the next call
                at = self._buf.find(CALL_CLOSE)
                if at < 0:
                    break
                self._buf = self._buf[at + len(CALL_CLOSE):].lstrip("\n")
                self._state = "content"
        return (content if self.content_allowed else ""), events

    def _scan_args(self) -> int:
        """Length of the argument JSON available in the buffer (up to its closing brace)."""
        for i, ch in enumerate(self._buf):
            if self._in_string:
                if self._escape:
                    self._escape = False
                elif ch == "\\":
                    self._escape = True
                elif ch == '"':
                    self._in_string = False
            elif ch == '"':
                self._in_string = True
            elif ch in "{[":
                self._depth += 1
            elif ch in "}]":
                self._depth -= 1
                if self._depth == 0:
                    return i + 1
        return len(self._buf)

    def finish(self) -> tuple[str, list[CallEvent]]:
        """Whatever is still held back: an answer of bare JSON calls as call events, or content
        (text that was not such calls, a `<tool_call` that never completed)."""
        rest, self._buf = self._buf, ""
        if self._state == "bare":
            calls = bare_calls(rest, self.schemas or {})
            if calls:
                events = []
                for name, arguments in calls:
                    call = CallEvent(index=len(self.calls), id=new_id("call_", CALL_ID_LENGTH), name=name,
                                     arguments=arguments)
                    self.calls.append(call)
                    events += [CallEvent(index=call.index, id=call.id, name=name),
                               CallEvent(index=call.index, arguments=arguments)]
                return "", events
        elif self._state != "content":
            rest = ""
        return (rest if self.content_allowed else ""), []


def bare_calls(text: str, schemas: dict[str, dict[str, Any]]) -> list[tuple[str, str]] | None:
    """The calls in an answer made only of JSON call objects, as (name, arguments JSON); None unless
    every object names a known function with arguments valid for its schema."""
    text = text.strip()
    if fenced := FENCE.match(text):
        text = fenced.group(1)
    objects: list[Any] = []
    decoder, at = json.JSONDecoder(), 0
    try:
        while at < len(text):
            value, at = decoder.raw_decode(text, at)
            objects += value if isinstance(value, list) else [value]
            while at < len(text) and text[at] in " \t\r\n,":
                at += 1
    except json.JSONDecodeError:
        return None
    if not objects or len(objects) > MAX_PARALLEL_CALLS:
        return None
    calls = []
    for obj in objects:
        if not isinstance(obj, dict) or not isinstance(obj.get("name"), str) or obj["name"] not in schemas:
            return None
        args = obj.get("arguments", obj.get("parameters", {}))
        if isinstance(args, str):                 # some models write the arguments as a JSON string
            try:
                args = json.loads(args)
            except json.JSONDecodeError:
                return None
        if not isinstance(args, dict) or set(obj) - {"name", "arguments", "parameters"}:
            return None
        schema = schemas[obj["name"]] or {"type": "object"}
        try:
            jsonschema.validators.validator_for(schema)(schema).validate(args)
        except (jsonschema.ValidationError, jsonschema.SchemaError):
            return None
        calls.append((obj["name"], json.dumps(args, ensure_ascii=False)))
    return calls

