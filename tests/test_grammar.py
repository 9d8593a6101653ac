"""JSON Schema to grammar: what we enforce, and a clear refusal, by name, of what we cannot."""

from __future__ import annotations

import pytest

from omnimini.engine.grammar import SchemaError, check_schema, json_object_grammar, json_schema_grammar


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"], "additionalProperties": False},
    {"type": "object", "properties": {"tags": {"type": "array", "items": {"enum": ["x", "y"]}, "maxItems": 3}}},
    {"anyOf": [{"type": "string", "format": "date"}, {"type": "null"}]},
    {"$defs": {"p": {"type": "object", "properties": {"n": {"type": "integer"}}}},
     "type": "object", "properties": {"p": {"$ref": "#/$defs/p"}, "q": {"type": ["string", "null"]}}},
    {"type": "string", "pattern": "^[A-Z]{3}-[0-9]+$", "description": "a code"},
])
def test_supported_schemas_compile(schema):
    check_schema(schema)
    assert json_schema_grammar(schema).startswith("root ::= ")


@pytest.mark.parametrize("schema,word", [
    ({"type": "integer", "minimum": 0}, "minimum"),
    ({"type": "object", "properties": {"a": {"type": "number", "multipleOf": 2}}}, "multipleOf"),
    ({"type": "array", "uniqueItems": True}, "uniqueItems"),
    ({"type": "string", "format": "email"}, "email"),
    ({"not": {"type": "string"}}, "not"),
    ({"type": "object", "patternProperties": {"^x": {}}}, "patternProperties"),
    ({"type": "strng"}, "strng"),
    ({"$ref": "https://example.com/s.json"}, "local references"),
    ({"type": "object", "properties": {"a": 5}}, "must be an object"),
    ({"type": "object", "required": "a"}, "required"),
    ([1, 2], "must be an object"),
])
def test_unsupported_or_invalid_schemas_are_named(schema, word):
    with pytest.raises(SchemaError, match=word):
        json_schema_grammar(schema)


def test_broken_reference_is_a_schema_error():
    with pytest.raises(SchemaError):
        json_schema_grammar({"$ref": "#/$defs/missing"})


def test_strings_exclude_raw_control_characters():
    # JSON forbids raw control characters inside strings; the grammar must too.
    char = next(line for line in json_object_grammar().splitlines() if line.startswith("char ::="))
    assert r"\x00-\x1F" in char
