"""Validate JSON bodies against OpenAI's published OpenAPI description.

Used by the test-suite to check that omnimini's responses have the shapes the
OpenAI spec promises, e.g.::

    from openapi_contract import validate, errors
    validate(body, "CreateChatCompletionResponse")   # raises ValidationError
    assert errors(chunk, "CreateChatCompletionStreamResponse") == []

The spec (``openapi.yaml``, OpenAPI 3.1 header) mixes 3.0-isms into its JSON
Schemas. Before validating with Draft 2020-12 we rewrite a copy of
``components.schemas`` so that those mean what the spec authors intended:

* ``nullable: true`` (3.0) -> also accept ``null``: ``type: T`` becomes
  ``type: [T, "null"]`` (and ``None`` is appended to an ``enum``); a nullable
  schema built from ``$ref``/``anyOf``/``allOf``/``oneOf``/``const`` becomes
  ``anyOf: [<schema>, {type: "null"}]``. ``nullable: false`` is dropped.
* boolean ``exclusiveMinimum``/``exclusiveMaximum`` (3.0) -> numeric form.
* ``$recursiveRef: "#"`` (2019-09, used by CompoundFilter) -> ``$ref`` to the
  enclosing component.

Nothing else is loosened or tightened: ``required``, ``additionalProperties``,
``enum`` etc. are kept as written. OpenAPI-only keywords (``discriminator``,
``example``, ``x-*``) are unknown to Draft 2020-12 and therefore ignored, and
``format`` is not enforced (no format checker).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema import Draft202012Validator, ValidationError
from referencing import Registry
from referencing.jsonschema import DRAFT202012

__all__ = ["SPEC_PATH", "validate", "errors", "schema", "ValidationError"]

# ../shared/openai-openapi/openapi.yaml beside the repo root, unless overridden.
SPEC_PATH = Path(
    os.environ.get("OMNIMINI_OPENAPI_SPEC")
    or Path(__file__).resolve().parents[2] / "shared/openai-openapi/openapi.yaml"
)

# URI under which the (rewritten) spec is registered; the spec's own
# "#/components/schemas/X" refs resolve relative to it.
_BASE_URI = "https://omnimini.invalid/openai-openapi.json"

# Keywords whose values are literal data, not sub-schemas: never rewrite them.
_LITERAL = {"enum", "const", "default", "example", "examples"}
# Keywords that make a `type: [T, "null"]` rewrite insufficient for nullability.
_COMPOSITE = {"$ref", "anyOf", "allOf", "oneOf", "not", "const"}


def _fix(node: Any, component: str) -> Any:
    """Return a rewritten copy of one schema node (see module docstring)."""
    if isinstance(node, list):
        return [_fix(v, component) for v in node]
    if not isinstance(node, dict):
        return node
    out = {
        k: v if k in _LITERAL or str(k).startswith("x-") else _fix(v, component)
        for k, v in node.items()
    }
    # Bool-valued keywords only: a *property* named e.g. "nullable" maps to a dict.
    for excl, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(excl), bool):
            if out.pop(excl) and bound in out:
                out[excl] = out.pop(bound)
    if out.get("$recursiveRef") == "#":
        del out["$recursiveRef"]
        out["$ref"] = f"#/components/schemas/{component}"
    if out.get("$recursiveAnchor") is True:  # not a 2020-12 keyword
        del out["$recursiveAnchor"]
    if isinstance(out.get("nullable"), bool) and out.pop("nullable"):
        types = out.get("type")
        if isinstance(types, (str, list)) and not _COMPOSITE & out.keys():
            types = [types] if isinstance(types, str) else list(types)
            out["type"] = types + ["null"] if "null" not in types else types
            if "enum" in out and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


@functools.lru_cache(maxsize=None)
def _schemas() -> dict[str, Any]:
    """Load the spec once and return its rewritten ``components.schemas``."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # C loader: ~5x faster
    with open(SPEC_PATH, "rb") as f:
        spec = yaml.load(f, Loader=loader)
    return {name: _fix(s, name) for name, s in spec["components"]["schemas"].items()}


@functools.lru_cache(maxsize=None)
def _registry() -> Registry:
    # Register only the components (paths are not needed) as one Draft 2020-12
    # resource, so refs are resolved lazily by pointer lookup, not by copying.
    doc = {"components": {"schemas": _schemas()}}
    return Registry().with_resource(_BASE_URI, DRAFT202012.create_resource(doc))


@functools.lru_cache(maxsize=None)
def _validator(schema_name: str) -> Draft202012Validator:
    if schema_name not in _schemas():
        raise KeyError(f"no schema #/components/schemas/{schema_name} in {SPEC_PATH}")
    ref = {"$ref": f"{_BASE_URI}#/components/schemas/{schema_name}"}
    return Draft202012Validator(ref, registry=_registry())  # format_checker=None


def schema(schema_name: str) -> dict[str, Any]:
    """The rewritten component schema (x-oaiMeta, descriptions etc. kept)."""
    _validator(schema_name)  # raises KeyError for unknown names
    return _schemas()[schema_name]


def _short(schema_name: str, err: ValidationError) -> ValidationError:
    """Compact copy of the most relevant (deepest) error for ``err``.

    jsonschema's default str() dumps the whole (huge) sub-schema; this keeps
    the JSON path and message, plus ``path``/``validator``/``instance`` attrs.
    """
    leaf = jsonschema.exceptions.best_match([err])  # descends into anyOf/oneOf
    return ValidationError(
        f"{schema_name}: {leaf.json_path}: {leaf.message}",
        validator=leaf.validator,
        validator_value=leaf.validator_value,
        instance=leaf.instance,
        path=leaf.absolute_path,
        schema_path=leaf.absolute_schema_path,
    )  # `schema` left unset, so str() is just the message


def errors(instance: Any, schema_name: str) -> list[str]:
    """All violations of ``#/components/schemas/<schema_name>``, as strings."""
    found = _validator(schema_name).iter_errors(instance)
    found = sorted(found, key=lambda e: [str(p) for p in e.absolute_path])
    return [_short(schema_name, e).message for e in found]


def validate(instance: Any, schema_name: str) -> None:
    """Raise ``jsonschema.ValidationError`` unless ``instance`` conforms."""
    err = jsonschema.exceptions.best_match(_validator(schema_name).iter_errors(instance))
    if err is not None:
        raise _short(schema_name, err)
