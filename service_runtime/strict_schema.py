"""OpenAI's strict structured-output subset of JSON Schema: the schema we send, and the check.

Under ``strict: true`` the API accepts only part of JSON Schema (the structured-outputs guide,
"Supported schemas"; OpenAI's own SDKs check it locally, e.g. ``JsonSchemaValidator`` in
openai/openai-java) and answers anything else with ``400 Invalid schema for response_format``, on
every call. Our reply models keep their full constraints for our own validation (Pydantic); what
goes on the wire is derived from the same model (:func:`wire_schema`) with the constraints the
subset refuses taken off and restated in the field's description, so the model still reads them.

:func:`strict_schema_problems` is the check, worded as the API words its refusals. Services run it
on every schema they send before they start (:func:`check_wire_schemas`), and the LLM simulator
runs it on every strict request, so a schema the provider would refuse fails at start and in
the tests, not on the first paid call.
"""

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pydantic

# The SDK's private helper (``openai.lib``): this module is its only user, and
# tests/unit/test_strict_schema.py pins what we rely on it for, so an SDK upgrade that changes it
# fails there, loudly, rather than on the provider's first refusal.
from openai.lib._pydantic import to_strict_json_schema as sdk_strict_schema
from openai.types.responses import ResponseFormatTextJSONSchemaConfigParam
from openai.types.shared_params import ResponseFormatJSONSchema

__all__ = [
    "StrictSchemaProblem",
    "WireSchemaError",
    "chat_response_format",
    "check_wire_schemas",
    "responses_text_format",
    "sdk_strict_schema",
    "strict_schema_problems",
    "wire_schema",
]

# The guide's limits ("Objects have limitations on nesting depth and size").
MAX_NESTING_DEPTH = 10
MAX_OBJECT_PROPERTIES = 5000
MAX_ENUM_VALUES = 1000
MAX_TOTAL_STRING_LENGTH = 120_000
LARGE_ENUM_VALUES = 250  # a string enum with more values than this ...
MAX_LARGE_ENUM_STRING_LENGTH = 15_000  # ... may hold at most this many characters in all

_ANNOTATIONS = frozenset({"title", "description"})
_ROOT_ONLY = frozenset({"$schema", "$id", "$defs"})
_BY_TYPE: Mapping[str, frozenset[str]] = {
    "object": _ANNOTATIONS | {"type", "properties", "required", "additionalProperties"},
    "array": _ANNOTATIONS | {"type", "items", "minItems", "maxItems"},
    "string": _ANNOTATIONS | {"type", "enum", "const", "pattern", "format"},
    "number": _ANNOTATIONS
    | {"type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"},
    "boolean": _ANNOTATIONS | {"type", "enum", "const"},
    "null": _ANNOTATIONS | {"type", "enum", "const"},
}
_BY_TYPE = {**_BY_TYPE, "integer": _BY_TYPE["number"]}
_ANY_OF_KEYWORDS = _ANNOTATIONS | {"anyOf"}
_REF_KEYWORDS = _ANNOTATIONS | {"$ref"}

# What the wire schema takes off because our own validation enforces it after the reply: string
# lengths (Pydantic's min_length/max_length), defaults (every property is required on the wire),
# uniqueness of set items. Anything else outside the subset is left in, for the check to name.
_ENFORCED_BY_US = ("minLength", "maxLength", "default", "uniqueItems")

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class StrictSchemaProblem:
    """One thing the API refuses: where (``path`` into the schema), which keyword, and its words."""

    path: Path
    keyword: str
    message: str

    def __str__(self) -> str:
        return self.message


class WireSchemaError(Exception):
    """A schema we would send lies outside the strict subset: the service must not start."""

    def __init__(self, name: str, problems: Sequence[StrictSchemaProblem]) -> None:
        listed = "; ".join(f"'{p.keyword}' at {'/'.join(map(str, p.path)) or '(root)'}: {p}" for p in problems)
        super().__init__(f"the strict schema for {name!r} would be refused by the provider: {listed}")
        self.name = name
        self.problems = tuple(problems)


def strict_schema_problems(schema: Mapping[str, Any]) -> list[StrictSchemaProblem]:
    """Everything in ``schema`` the API refuses under ``strict: true``, in the API's words."""
    checker = _Checker(schema)
    checker.check(schema, ())
    checker.totals()
    if (depth := _nesting(schema, schema, frozenset())) > MAX_NESTING_DEPTH:
        checker.add(
            (), "properties", f"the schema nests objects {depth} levels deep; at most {MAX_NESTING_DEPTH} are allowed."
        )
    return checker.problems


@functools.cache
def wire_schema(reply_type: type[pydantic.BaseModel]) -> dict[str, Any]:
    """The strict JSON schema sent for ``reply_type``: built once per type and shared, so read-only
    (a thousand waiting calls would otherwise each hold a copy)."""
    schema = sdk_strict_schema(reply_type)  # additionalProperties false, every property required
    _take_off_enforced(schema)
    return schema


def check_wire_schemas(reply_types: Iterable[type[pydantic.BaseModel]]) -> None:
    """Raise :class:`WireSchemaError` for the first reply type whose wire schema the API refuses."""
    for reply_type in reply_types:
        if problems := strict_schema_problems(wire_schema(reply_type)):
            raise WireSchemaError(reply_type.__name__, problems)


def chat_response_format(reply_type: type[pydantic.BaseModel]) -> ResponseFormatJSONSchema:
    """``response_format`` for Chat Completions."""
    return {
        "type": "json_schema",
        "json_schema": {"name": reply_type.__name__, "schema": wire_schema(reply_type), "strict": True},
    }


def responses_text_format(reply_type: type[pydantic.BaseModel]) -> ResponseFormatTextJSONSchemaConfigParam:
    """``text.format`` for the Responses API."""
    return {"type": "json_schema", "name": reply_type.__name__, "schema": wire_schema(reply_type), "strict": True}


def _take_off_enforced(node: object) -> None:
    if isinstance(node, list):
        for item in node:
            _take_off_enforced(item)
        return
    if not isinstance(node, dict):
        return
    note = _restated(node)
    for keyword in _ENFORCED_BY_US:
        node.pop(keyword, None)
    if note:
        node["description"] = f"{node['description']} ({note})" if node.get("description") else note.capitalize()
    for key, value in node.items():
        if key not in ("enum", "const"):
            _take_off_enforced(value)


def _restated(node: Mapping[str, Any]) -> str:
    """The string-length bounds the wire cannot carry, in words the model reads."""
    low, high = node.get("minLength"), node.get("maxLength")
    if node.get("type") != "string" or (low is None and high is None):
        return ""
    if high is None:
        return f"at least {low} characters"
    if low in (None, 0):
        return f"at most {high} characters"
    return f"{low} to {high} characters"


class _Checker:
    """One pass over a schema, collecting problems and the totals the guide limits."""

    def __init__(self, root: Mapping[str, Any]) -> None:
        self.problems: list[StrictSchemaProblem] = []
        defs = root.get("$defs")
        self._refs = {"#"} | ({f"#/$defs/{name}" for name in defs} if isinstance(defs, Mapping) else set())
        self._properties = self._enum_values = self._string_length = 0

    def add(self, path: Path, keyword: str, message: str, *, in_context: bool = True) -> None:
        words = f"In context={path!r}, {message}" if in_context else message
        self.problems.append(StrictSchemaProblem(path, keyword, words))

    def check(self, node: object, path: Path) -> None:
        if not isinstance(node, Mapping):
            self.add(path, "type", "schema must be a JSON Schema object.")
            return
        if not path:
            self._root(node)
        if "$ref" in node:
            self._ref(node, path)
        elif "anyOf" in node:
            self._any_of(node, path)
        elif "type" in node:
            self._typed(node, path)
        elif composed := [keyword for keyword in ("allOf", "oneOf", "not") if keyword in node]:
            self.add(path, composed[0], f"'{composed[0]}' is not permitted.")
        else:
            self.add(path, "type", "schema must have a 'type' key.")
        # After the node itself: the API names a root property's problem before a definition's.
        if isinstance(defs := node.get("$defs"), Mapping):
            for name, sub in defs.items():
                self._string_length += len(name)
                self.check(sub, (*path, "$defs", name))

    def totals(self) -> None:
        if self._properties > MAX_OBJECT_PROPERTIES:
            self.add((), "properties", f"a schema may have at most {MAX_OBJECT_PROPERTIES} object properties in all.")
        if self._enum_values > MAX_ENUM_VALUES:
            self.add((), "enum", f"a schema may have at most {MAX_ENUM_VALUES} enum values in all.")
        if self._string_length > MAX_TOTAL_STRING_LENGTH:
            self.add(
                (),
                "properties",
                "the total string length of property names, definition names, enum values and const values"
                f" may not exceed {MAX_TOTAL_STRING_LENGTH} characters.",
            )

    def _root(self, node: Mapping[str, Any]) -> None:
        if "anyOf" in node:
            self.add((), "anyOf", "'anyOf' is not permitted at the root of the schema.")
        if node.get("type") != "object":
            got = f"'type: \"{node['type']}\"'" if "type" in node else "no type"
            self.add((), "type", f"schema must be a JSON Schema of 'type: \"object\"', got {got}.", in_context=False)

    def _keywords(self, node: Mapping[str, Any], path: Path, allowed: frozenset[str]) -> None:
        for keyword in node:
            if keyword not in allowed and not (not path and keyword in _ROOT_ONLY):
                self.add(path, keyword, f"'{keyword}' is not permitted.")

    def _ref(self, node: Mapping[str, Any], path: Path) -> None:
        self._keywords(node, path, _REF_KEYWORDS)
        if node["$ref"] not in self._refs:
            self.add(path, "$ref", f"reference to component '{node['$ref']}' which was not found in the schema.")

    def _any_of(self, node: Mapping[str, Any], path: Path) -> None:
        self._keywords(node, path, _ANY_OF_KEYWORDS)
        options = node["anyOf"]
        if not isinstance(options, list) or not options:
            self.add(path, "anyOf", "'anyOf' must be a non-empty array of schemas.")
            return
        for index, option in enumerate(options):
            self.check(option, (*path, "anyOf", index))

    def _typed(self, node: Mapping[str, Any], path: Path) -> None:
        kind = _type_name(node["type"])
        if kind is None or kind not in _BY_TYPE:
            self.add(path, "type", f"type {node['type']!r} is not supported.")
            return
        self._keywords(node, path, _BY_TYPE[kind])
        if kind == "object":
            self._object(node, path)
        elif kind == "array":
            if not isinstance(items := node.get("items"), Mapping):
                self.add(path, "items", "'items' is required to be supplied and to be a schema.")
            else:
                self.check(items, (*path, "items"))
        else:
            self._scalar(node, path, kind)

    def _object(self, node: Mapping[str, Any], path: Path) -> None:
        if node.get("additionalProperties") is not False:
            self.add(path, "additionalProperties", "'additionalProperties' is required to be supplied and to be false.")
        properties = node.get("properties")
        if not isinstance(properties, Mapping):
            self.add(path, "properties", "'properties' is required to be supplied and to be an object.")
            return
        required = node.get("required")
        required_names = set(required) if isinstance(required, list) else set()
        if missing := [name for name in properties if name not in required_names]:
            self.add(
                path,
                "required",
                "'required' is required to be supplied and to be an array including every key in properties."
                f" Missing '{missing[0]}'.",
            )
        if extra := [name for name in required_names if name not in properties]:
            self.add(path, "required", f"'required' names '{sorted(map(str, extra))[0]}', which is not in properties.")
        for name, sub in properties.items():
            self._properties += 1
            self._string_length += len(name)
            self.check(sub, (*path, "properties", name))

    def _scalar(self, node: Mapping[str, Any], path: Path, kind: str) -> None:
        values = node.get("enum")
        if values is not None:
            if not isinstance(values, list) or not values:
                self.add(path, "enum", "'enum' must be a non-empty array.")
                return
            self._enum_values += len(values)
            length = sum(len(str(value)) for value in values)
            self._string_length += length
            if kind == "string" and len(values) > LARGE_ENUM_VALUES and length > MAX_LARGE_ENUM_STRING_LENGTH:
                self.add(
                    path,
                    "enum",
                    f"an enum of more than {LARGE_ENUM_VALUES} string values may hold at most"
                    f" {MAX_LARGE_ENUM_STRING_LENGTH} characters in all, got {length}.",
                )
        if "const" in node:
            self._string_length += len(str(node["const"]))


def _nesting(node: object, root: Mapping[str, Any], following: frozenset[str]) -> int:
    """How many objects deep ``node`` nests, following ``$ref``s (a recursive one counts once)."""
    if not isinstance(node, Mapping):
        return 0
    if isinstance(ref := node.get("$ref"), str):
        return 0 if ref in following else _nesting(_resolve(ref, root), root, following | {ref})
    children: list[object] = []
    if isinstance(properties := node.get("properties"), Mapping):
        children.extend(properties.values())
    if isinstance(options := node.get("anyOf"), list):
        children.extend(options)
    children.append(node.get("items"))
    own = 1 if node.get("type") == "object" else 0
    return own + max(_nesting(child, root, following) for child in children)


def _resolve(ref: str, root: Mapping[str, Any]) -> object:
    if ref == "#":
        return root
    defs = root.get("$defs")
    name = ref.removeprefix("#/$defs/")
    return defs.get(name) if isinstance(defs, Mapping) else None


def _type_name(value: object) -> str | None:
    """A type name, or the one non-null name of ``[name, "null"]`` (an optional value)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and len(value) == 2 and "null" in value:
        others = [v for v in value if v != "null"]
        if len(others) == 1 and isinstance(others[0], str):
            return others[0]
    return None
