"""response_format: plain text, any JSON object, or JSON that validates against a schema, enforced
by a grammar on every token (never by asking nicely)."""

from __future__ import annotations

from omnimini.engine.grammar import SchemaError, json_object_grammar, json_schema_grammar
from omnimini.protocol.chat import (ChatCompletionRequest, JSONObjectFormat,
                                    JSONSchemaResponseFormat)
from omnimini.protocol.errors import InvalidRequest


def response_grammar(req: ChatCompletionRequest) -> str | None:
    fmt = req.response_format
    if isinstance(fmt, JSONObjectFormat):
        return json_object_grammar()
    if isinstance(fmt, JSONSchemaResponseFormat):
        schema = fmt.json_schema.schema_
        if schema is None:
            return json_object_grammar()
        try:
            return json_schema_grammar(schema)
        except SchemaError as e:
            raise InvalidRequest(f"Invalid schema for response_format '{fmt.json_schema.name}': {e}",
                                 param="response_format.json_schema.schema", code="invalid_json_schema") from e
    return None
