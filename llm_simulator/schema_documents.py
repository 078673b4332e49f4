"""Documents that conform to an arbitrary JSON schema, for structured-output requests the simulator
has no domain generator for.

Covers what OpenAI's strict mode allows: objects, arrays, scalars, enums and consts, ``$ref`` into
``$defs``/``definitions``, ``anyOf``/``oneOf`` (first branch) and ``allOf`` (merged).
"""

import math
import random
import re
from typing import Any

_MAX_DEPTH = 8
_WORDS = (
    "steady", "progress", "strength", "balance", "recovery", "tempo", "focus", "form", "plan", "session",
    "volume", "effort", "mobility", "routine", "training", "consistency",
)  # fmt: skip
# A pattern that only lists literal alternatives, e.g. ^(beginner|intermediate|advanced)$.
_ALTERNATIVES = re.compile(r"^\^?\(?((?:[\w -]+\|)*[\w -]+)\)?\$?$")


def document_for(schema: dict[str, Any], rng: random.Random) -> Any:
    """A value valid against ``schema`` (best effort for constructs strict mode does not allow)."""
    return _Filler(schema, rng).value(schema, name="value", depth=0)


class _Filler:
    def __init__(self, root: dict[str, Any], rng: random.Random) -> None:
        self._root = root
        self._rng = rng

    def value(self, schema: dict[str, Any], *, name: str, depth: int) -> Any:  # noqa: PLR0912
        schema = self._resolve(schema)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return self._rng.choice(schema["enum"])
        if "allOf" in schema:
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                merged = _merge(merged, self._resolve(part))
            rest = {k: v for k, v in schema.items() if k != "allOf"}
            return self.value(_merge(merged, rest), name=name, depth=depth)
        for key in ("anyOf", "oneOf"):
            if schema.get(key):
                branches = schema[key]
                if depth >= _MAX_DEPTH:
                    # Deep in a recursive schema, prefer a branch that ends the recursion.
                    branches = [b for b in branches if self._resolve(b).get("type") == "null"] or branches
                return self.value(branches[0], name=name, depth=depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            non_null = [k for k in kind if k != "null"]
            kind = "null" if depth >= _MAX_DEPTH and "null" in kind else (non_null[0] if non_null else "null")
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, name, depth)
        if kind == "string":
            return self._string(schema, name)
        if kind == "integer":
            return int(self._number(schema, integer=True))
        if kind == "number":
            return self._number(schema, integer=False)
        if kind == "boolean":
            return self._rng.random() < 0.5
        return None

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while "$ref" in schema and seen < 32:
            ref = schema["$ref"]
            target: Any = self._root
            if not isinstance(ref, str) or not ref.startswith("#"):
                return {}
            for part in ref.lstrip("#").strip("/").split("/"):
                if part:
                    target = target.get(part.replace("~1", "/").replace("~0", "~"), {})
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            schema = _merge(target, siblings) if siblings else target
            seen += 1
        return schema

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        properties: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", properties))
        result: dict[str, Any] = {}
        for key, sub in properties.items():
            # Optional properties are left out deep down, so recursive schemas terminate.
            if key in required or depth < _MAX_DEPTH // 2:
                result[key] = self.value(sub, name=key, depth=depth + 1)
        return result

    def _array(self, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
        low = int(schema.get("minItems", 0))
        high = int(schema.get("maxItems", low + 3))
        # A few items, never fewer than minItems nor more than maxItems, and none when deep in recursion.
        if depth >= _MAX_DEPTH:
            count = low
        else:
            fewest = max(low, min(1, high))
            count = self._rng.randint(fewest, max(fewest, min(high, low + 3)))
        items = schema.get("items", {})
        if isinstance(items, list):  # draft-4 tuple form
            return [self.value(s, name=name, depth=depth + 1) for s in items]
        return [self.value(items, name=name, depth=depth + 1) for _ in range(count)]

    def _string(self, schema: dict[str, Any], name: str) -> str:
        fmt = schema.get("format")
        if fmt == "date-time":
            text = "2025-01-06T09:00:00Z"
        elif fmt == "date":
            text = "2025-01-06"
        elif fmt == "time":
            text = "09:00:00"
        elif fmt == "email":
            text = "athlete@example.com"
        elif fmt in ("uri", "url"):
            text = "https://example.com/"
        elif fmt == "uuid":
            text = "%08x-%04x-4%03x-8%03x-%012x" % (  # noqa: UP031
                self._rng.getrandbits(32),
                self._rng.getrandbits(16),
                self._rng.getrandbits(12),
                self._rng.getrandbits(12),
                self._rng.getrandbits(48),
            )
        elif (pattern := schema.get("pattern")) and (match := _ALTERNATIVES.match(pattern)):
            text = self._rng.choice(match.group(1).split("|"))
        else:
            label = name.replace("_", " ").strip() or "value"
            text = f"{label.capitalize()}: {' '.join(self._rng.sample(_WORDS, k=2))}"
        low = int(schema.get("minLength", 0))
        high = schema.get("maxLength")
        if len(text) < low:
            text = text + "x" * (low - len(text))
        if high is not None:
            text = text[: int(high)]
        return text

    def _number(self, schema: dict[str, Any], *, integer: bool) -> float:
        low = schema.get("minimum")
        high = schema.get("maximum")
        step = 1 if integer else 0.01
        if low is None and isinstance(schema.get("exclusiveMinimum"), int | float):
            low = schema["exclusiveMinimum"] + step
        if high is None and isinstance(schema.get("exclusiveMaximum"), int | float):
            high = schema["exclusiveMaximum"] - step
        low = 0 if low is None else low
        high = max(low, low + 10 if high is None else high)
        if integer:
            first, last = math.ceil(low), math.floor(high)
            return self._rng.randint(first, max(first, last))
        value = self._rng.uniform(low, high)
        if multiple := schema.get("multipleOf"):
            value = max(low, math.floor(value / multiple) * multiple)
        return min(high, max(low, round(value, 2)))


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if key == "properties" and isinstance(value, dict):
            merged[key] = {**merged.get(key, {}), **value}
        elif key == "required" and isinstance(value, list):
            merged[key] = sorted(set(merged.get(key, [])) | set(value))
        else:
            merged[key] = value
    return merged
