"""JSON Schema to GBNF grammars for llama.cpp's constrained sampling.

The conversion itself is llama.cpp's own converter (ported in llama-cpp-python as
`llama_cpp.llama_grammar.SchemaConverter`). Around it: a check that refuses, by name, every schema
keyword the grammar would not enforce (a schema we cannot enforce is a 400, never silently
ignored), and a builder that combines several schemas into one grammar (tool calls).
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from llama_cpp.llama_grammar import PRIMITIVE_RULES, SchemaConverter

# Keywords whose meaning the grammar enforces, and annotations that constrain nothing.
ENFORCED = {"type", "properties", "required", "additionalProperties", "items", "prefixItems",
            "minItems", "maxItems", "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "$defs",
            "definitions", "pattern", "format", "minLength", "maxLength"}
ANNOTATIONS = {"title", "description", "default", "examples", "$schema", "$id", "$comment",
               "deprecated", "readOnly", "writeOnly", "nullable"}
# String formats with a grammar rule in the converter.
FORMATS = {"date", "time", "date-time", "uuid", "uuid1", "uuid2", "uuid3", "uuid4", "uuid5"}
TYPES = {"object", "array", "string", "number", "integer", "boolean", "null"}
# Keywords whose values are maps of name -> schema, or lists of schemas.
_SCHEMA_MAPS = {"properties", "$defs", "definitions"}
# The converter's `char` admits raw control characters, which JSON forbids inside strings
# (RFC 8259 section 7; Python's json.loads rejects them). This is the rule newer llama.cpp uses.
JSON_CHAR_RULE = r'[^"\\\x7F\x00-\x1F] | "\\" (["\\/bfnrt] | "u" [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F] [0-9a-fA-F])'
_SCHEMA_LISTS = {"anyOf", "oneOf", "allOf", "prefixItems"}


class SchemaError(ValueError):
    """The schema is invalid or uses something we cannot enforce. `path` says where."""

    def __init__(self, message: str, path: str = "$"):
        super().__init__(f"{message} (at {path})")
        self.path = path


def _walk(schema: Any, path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    if not isinstance(schema, dict):
        if isinstance(schema, bool):        # true / false schemas
            if schema is False:
                raise SchemaError("the schema `false` accepts nothing", path)
            return
        raise SchemaError(f"a schema must be an object, got {type(schema).__name__}", path)
    yield path, schema
    for key, value in schema.items():
        if key in _SCHEMA_MAPS:
            if not isinstance(value, dict):
                raise SchemaError(f"'{key}' must be an object", path)
            for name, sub in value.items():
                yield from _walk(sub, f"{path}.{key}.{name}")
        elif key in _SCHEMA_LISTS:
            if not isinstance(value, list) or not value:
                raise SchemaError(f"'{key}' must be a non-empty array of schemas", path)
            for i, sub in enumerate(value):
                yield from _walk(sub, f"{path}.{key}[{i}]")
        elif key == "items" and not isinstance(value, bool):
            yield from _walk(value, f"{path}.items")
        elif key == "additionalProperties" and isinstance(value, dict):
            yield from _walk(value, f"{path}.additionalProperties")


def check_schema(schema: Any) -> None:
    """Raise SchemaError naming the first keyword or value the grammar would not enforce."""
    for path, node in _walk(schema, "$"):
        for key, value in node.items():
            if key.startswith("x-") or key in ANNOTATIONS:
                continue
            if key not in ENFORCED:
                raise SchemaError(f"the JSON Schema keyword '{key}' is not supported", path)
            if key == "type":
                types = value if isinstance(value, list) else [value]
                bad = [t for t in types if t not in TYPES]
                if bad:
                    raise SchemaError(f"unknown type {bad[0]!r}", path)
            elif key == "format" and value not in FORMATS:
                raise SchemaError(f"the string format '{value}' is not supported "
                                  f"(supported: {', '.join(sorted(FORMATS))})", path)
            elif key == "$ref" and not (isinstance(value, str) and value.startswith("#/")):
                raise SchemaError(f"only local references ('#/...') are supported, got {value!r}", path)
            elif key == "required" and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise SchemaError("'required' must be an array of property names", path)
            elif key in ("minItems", "maxItems", "minLength", "maxLength") and not (
                    isinstance(value, int) and value >= 0):
                raise SchemaError(f"'{key}' must be a non-negative integer", path)
            elif key == "enum" and not (isinstance(value, list) and value):
                raise SchemaError("'enum' must be a non-empty array", path)
            elif key == "allOf" and any(isinstance(s, dict) and not ({"properties", "$ref"} & set(s))
                                        for s in value):
                raise SchemaError("'allOf' is supported only to combine object schemas with properties",
                                  path)


class GrammarBuilder:
    """Collects rules from one or more schemas plus hand-written rules, and prints GBNF."""

    def __init__(self) -> None:
        self._conv = SchemaConverter(prop_order={}, allow_fetch=False, dotall=False, raw_pattern=False)
        self._extra: dict[str, str] = {}

    def schema(self, schema: dict[str, Any], name: str) -> str:
        """Add the rules for `schema`; returns the name of its rule."""
        check_schema(schema)
        schema = json.loads(json.dumps(schema))      # the converter rewrites $refs in place
        try:
            self._conv.resolve_refs(schema, name)
            return self._conv.visit(schema, name)
        except (AssertionError, KeyError, ValueError, TypeError, RecursionError) as e:
            raise SchemaError(f"the schema could not be compiled: {e}") from e

    def any_object(self) -> str:
        return self._conv._add_primitive("object", PRIMITIVE_RULES["object"])

    def rule(self, name: str, body: str) -> str:
        self._extra[name] = body
        return name

    @staticmethod
    def literal(text: str) -> str:
        return json.dumps(text)          # a GBNF string literal uses JSON's escapes

    def gbnf(self, root_body: str) -> str:
        rules = [f"root ::= {root_body}"]
        rules += [f"{k} ::= {v}" for k, v in self._extra.items()]
        for line in self._conv.format_grammar().splitlines():
            if line.startswith("char ::="):
                line = f"char ::= {JSON_CHAR_RULE}"
            if not line.startswith("root ::="):
                rules.append(line)
        return "\n".join(rules)


def json_schema_grammar(schema: dict[str, Any]) -> str:
    b = GrammarBuilder()
    return b.gbnf(b.schema(schema, "schema"))


def json_object_grammar() -> str:
    b = GrammarBuilder()
    return b.gbnf(b.any_object())
