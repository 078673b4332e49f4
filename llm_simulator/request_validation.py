"""Request bodies checked against OpenAI's published schemas, refused as the API refuses them.

The schemas are the committed extract of OpenAI's OpenAPI description (``openapi_extract``),
read as JSON Schema 2020-12 with three readings the API needs: ``nullable: true`` also admits
``null`` (an OpenAPI 3.0 keyword the description still uses); ``oneOf`` is read as ``anyOf``
(the description's unions overlap, e.g. two message shapes both match ``{"role": "user",
"content": "hi"}``, and the API accepts either); and objects are closed, as the API refuses
parameters it does not know at any depth (``Unknown parameter: 'input[0].bogus'.``) although the
description leaves ``additionalProperties`` open: every object schema that is not a part of an
``allOf`` gets ``unevaluatedProperties: false``, which sees the properties its parts declare (a
schema that is an ``allOf`` part somewhere stays open everywhere: lenient, never a false refusal).

Of the errors a body has, the one reported is the one the API names: the deepest, in a union
member the value could be (a member whose ``type`` or ``role`` the value does not have is ruled
out first).

Checking a planner's request costs ~2 ms, and a plan's nine calls differ only in the words of their
messages and their ``prompt_cache_key`` (the request's id), both of which OpenAI's schemas leave
unconstrained (any string). So a chat body's verdict is kept per shape: the body with each
message's text content and a string ``prompt_cache_key`` blanked (see ``_shape``).
"""

import functools
import json
from typing import Any

from jsonschema import Draft202012Validator, ValidationError  # type: ignore[import-untyped]
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from llm_simulator import refusals
from llm_simulator.openapi_extract import EXTRACT_PATH
from llm_simulator.protocol import ApiError

_BASE_URI = "urn:openai-openapi:requests"
_COMBINATORS = frozenset({"anyOf", "oneOf"})
_DISCRIMINATORS = frozenset({"type", "role"})
_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a decimal",
    "boolean": "a boolean",
    "array": "an array",
    "object": "an object",
    "null": "null",
}


def refusal(operation: str, body: object) -> ApiError | None:
    """What the API answers to ``body`` sent to ``operation`` (``create_chat_completion``,
    ``create_response``, ``create_batch``), or None if the API accepts it."""
    if not isinstance(body, dict):
        return refusals.unparsable_body()
    chat = operation == "create_chat_completion"
    if chat and "model" not in body:
        return refusals.missing_model()
    known = _top_level_names(operation)
    unknown = [name for name in body if name not in known]
    if unknown:
        return refusals.unrecognized_argument(unknown[0]) if chat else refusals.unknown_parameter(unknown[0])
    if operation == "create_response" and "model" not in body:
        # Optional in the description (a stored prompt may name it); the simulator needs one.
        return refusals.missing_parameter("model")
    if chat:
        return _chat_verdict(_shape(body))
    return _verdict(operation, body)


def _verdict(operation: str, body: object) -> ApiError | None:
    errors = list(_validator(operation).iter_errors(body))
    if not errors:
        return None
    return _worded(_reported(errors))


@functools.lru_cache(maxsize=256)
def _chat_verdict(shape: str) -> ApiError | None:
    return _verdict("create_chat_completion", json.loads(shape))


def _shape(body: dict[str, Any]) -> str:
    """``body`` as canonical JSON with every message's text content and a string
    ``prompt_cache_key`` blanked: two bodies of one shape get the same verdict, since the schemas
    put no bound on those strings. Anything else (a content-part list, a non-string) is kept as it is."""
    messages = body.get("messages")
    if isinstance(messages, list):
        blanked = [
            {**m, "content": ""} if isinstance(m, dict) and isinstance(m.get("content"), str) else m for m in messages
        ]
        body = {**body, "messages": blanked}
    if isinstance(body.get("prompt_cache_key"), str):
        body = {**body, "prompt_cache_key": ""}
    return json.dumps(body, sort_keys=True, separators=(",", ":"))


@functools.cache
def _document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(EXTRACT_PATH.read_text(encoding="utf-8"))
    parts = _all_of_parts(document["schemas"])
    document["schemas"] = {
        name: _as_json_schema(schema, closed=name not in parts) for name, schema in document["schemas"].items()
    }
    return document


def _all_of_parts(schemas: dict[str, Any]) -> set[str]:
    """The named schemas some ``allOf`` composes: closing them would refuse their siblings' properties."""
    parts: set[str] = set()
    pending: list[object] = list(schemas.values())
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
        elif isinstance(node, dict):
            for part in node.get("allOf", []):
                if isinstance(ref := part.get("$ref"), str):
                    parts.add(ref.rsplit("/", 1)[-1])
            pending.extend(node.values())
    return parts


@functools.cache
def _validator(operation: str) -> Draft202012Validator:
    document = _document()
    name = document["operations"][operation]["body"]
    # Refs in the description point at #/components/schemas/...; the extract keeps that layout.
    contents = {"components": {"schemas": document["schemas"]}}
    resource = Resource.from_contents(contents, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource(_BASE_URI, resource)
    return Draft202012Validator({"$ref": f"{_BASE_URI}#/components/schemas/{name}"}, registry=registry)


@functools.cache
def _top_level_names(operation: str) -> frozenset[str]:
    """Every property a body's top level may have, through ``allOf`` and ``$ref``."""
    schemas = _document()["schemas"]
    names: set[str] = set()
    pending = [schemas[_document()["operations"][operation]["body"]]]
    while pending:
        schema = pending.pop()
        if isinstance(ref := schema.get("$ref"), str):
            schema = schemas[ref.rsplit("/", 1)[-1]]
        names.update(schema.get("properties", {}))
        pending.extend(schema.get("allOf", []))
    return frozenset(names)


def read_as_json_schema(schema: object, *, close_objects: bool) -> object:
    """A schema of the description as JSON Schema 2020-12: ``nullable`` and ``oneOf`` read as the
    API reads them and, with ``close_objects``, objects closed (for requests; a reply may carry
    fields the description does not list yet)."""
    return _as_json_schema(schema, close_objects=close_objects)


def _as_json_schema(node: object, *, closed: bool = True, close_objects: bool = True) -> object:
    """One schema read as the API reads it: ``nullable``, overlapping ``oneOf``, closed objects.

    ``closed=False`` for a schema an ``allOf`` composes (the composition is closed instead)."""
    if isinstance(node, list):
        return [_as_json_schema(item, close_objects=close_objects) for item in node]
    if not isinstance(node, dict):
        return node
    converted: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("enum", "const", "required", "nullable"):
            converted[key] = value
        elif key == "properties":
            converted[key] = {name: _as_json_schema(sub, close_objects=close_objects) for name, sub in value.items()}
        elif key == "allOf":
            converted[key] = [_as_json_schema(part, closed=False, close_objects=close_objects) for part in value]
        else:
            converted["anyOf" if key == "oneOf" else key] = _as_json_schema(value, close_objects=close_objects)
    converted.pop("nullable", None)
    opens = ("additionalProperties", "unevaluatedProperties", "patternProperties")
    closing = closed and close_objects and ("properties" in node or "allOf" in node)
    if closing and not any(key in node for key in opens):
        converted["unevaluatedProperties"] = False
    if node.get("nullable") is not True:
        return converted
    kind = converted.get("type")
    if isinstance(kind, str):
        converted["type"] = [kind, "null"]
        if "enum" in converted:
            converted["enum"] = [*converted["enum"], None]
        return converted
    return {"anyOf": [converted, {"type": "null"}]}


def _leaves(error: ValidationError, *, rule_out: bool = True) -> list[ValidationError]:
    """The errors under a union's failure, from the members the value could be."""
    if error.validator not in _COMBINATORS or not error.context:
        return [error]
    branches: dict[object, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    plausible = [b for b in branches.values() if not (rule_out and _ruled_out(b, error))]
    chosen = plausible or list(branches.values())
    return [leaf for branch in chosen for sub in branch for leaf in _leaves(sub, rule_out=rule_out)]


def _ruled_out(branch: list[ValidationError], union: ValidationError) -> bool:
    """A member is ruled out when the value is not of its JSON type, or names another ``type``/``role``."""
    here = list(union.absolute_path)
    for leaf in (leaf for sub in branch for leaf in _leaves(sub, rule_out=False)):
        path = list(leaf.absolute_path)
        if leaf.validator == "type" and path == here:
            return True
        if leaf.validator in ("enum", "const") and path[:-1] == here and path[-1:] and path[-1] in _DISCRIMINATORS:
            return True
    return False


def _reported(errors: list[ValidationError]) -> list[ValidationError]:
    """The errors to word: the deepest leaves, all at one place in the body."""
    leaves = [leaf for error in errors for leaf in _leaves(error)]
    deepest = max(_depth(leaf) for leaf in leaves)
    chosen = [leaf for leaf in leaves if _depth(leaf) == deepest]
    first = _param_path(chosen[0])
    return [leaf for leaf in chosen if _param_path(leaf) == first]


def _depth(error: ValidationError) -> int:
    return len(_param_path(error))


def _param_path(error: ValidationError) -> list[str | int]:
    """Where the API points: the value's path, or for a missing or unknown key, the key's."""
    path: list[str | int] = list(error.absolute_path)
    if error.validator == "required":
        path.append(_missing(error))
    elif error.validator in ("additionalProperties", "unevaluatedProperties"):
        path.append(_extra(error))
    return path


def _missing(error: ValidationError) -> str:
    instance = error.instance if isinstance(error.instance, dict) else {}
    return next((str(name) for name in error.validator_value if name not in instance), "")


def _extra(error: ValidationError) -> str:
    """The first key the schema does not know (jsonschema names them, quoted, in its message)."""
    instance = error.instance if isinstance(error.instance, dict) else {}
    return next((str(name) for name in instance if repr(name) in error.message), "")


def _param(path: list[str | int]) -> str:
    return "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).removeprefix(".")


def _worded(errors: list[ValidationError]) -> ApiError:
    error = errors[0]
    param = _param(_param_path(error))
    value = error.instance
    kind = error.validator
    if kind == "required":
        return refusals.missing_parameter(param)
    if kind in ("additionalProperties", "unevaluatedProperties"):
        return refusals.unknown_parameter(param)
    if kind in ("enum", "const"):
        supported = list(dict.fromkeys(v for e in errors if e.validator in ("enum", "const") for v in _values(e)))
        if isinstance(value, str):
            return refusals.invalid_value(param, value, [v for v in supported if v is not None])
        choices = refusals.listed([f"'{v}'" for v in supported], "or")
        return refusals.invalid_type(param, [f"one of {choices}"], _got(value))
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        below = kind in ("minimum", "exclusiveMinimum")
        integer = isinstance(value, int) and "integer" in _types(error.schema.get("type"))
        return refusals.out_of_range(param, value, error.validator_value, below=below, integer=integer)
    if kind in ("minItems", "maxItems", "minLength", "maxLength"):
        return refusals.bad_length(
            param,
            kind="array" if kind.endswith("Items") else "string",
            actual=len(value),
            bound=error.validator_value,
            too_long=kind.startswith("max"),
        )
    types = [t for e in errors if e.validator == "type" for t in _types(e.validator_value)]
    if types:
        expected = list(dict.fromkeys(_TYPE_WORDS.get(t, t) for t in types if t != "null"))
        return refusals.invalid_type(param, expected or ["null"], _got(value))
    return refusals.invalid(f"Invalid value for '{param}': {error.message}", param or None, "invalid_value")


def _values(error: ValidationError) -> list[object]:
    return list(error.validator_value) if error.validator == "enum" else [error.validator_value]


def _types(value: object) -> list[str]:
    return [value] if isinstance(value, str) else [str(v) for v in value] if isinstance(value, list) else []


def _got(value: object) -> str:
    """What the API says it received."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
