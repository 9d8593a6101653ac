"""How tool calls look inside a conversation: the Hermes / Qwen2.5 format, which Qwen models are
trained on and which we describe to other models. Earlier calls in the history are rendered the
same way the model is made to write new ones."""

from __future__ import annotations

import json

CALL_OPEN = "<tool_call>"
CALL_CLOSE = "</tool_call>"
CALL_HEAD = '<tool_call>\n{"name": '         # exactly what the grammar makes the model write
ARGS_KEY = ', "arguments": '
CALL_TAIL = "}\n</tool_call>"


def call_text(name: str, arguments: str) -> str:
    try:
        args = json.dumps(json.loads(arguments), ensure_ascii=False)
    except (json.JSONDecodeError, TypeError):
        args = json.dumps(arguments)         # not JSON: keep it, as a string
    return f"{CALL_HEAD}{json.dumps(name)}{ARGS_KEY}{args}{CALL_TAIL}"
