"""The part of OpenAI's OpenAPI description the simulator validates requests against.

The simulator refuses what the real API refuses, so it checks every request body against the
component schemas OpenAI publishes (openai/openai-openapi, MIT). The whole description is 3.4 MB
and is not shipped with the code; :func:`extract` takes from it just the operations the simulator
serves and the schemas their request bodies reach, without the prose (descriptions, examples,
titles), and ``llm_simulator/openapi/requests.json`` is that extract, committed.

``python -m llm_simulator extract-openapi [--reference PATH]`` rewrites it from a copy of the
description (by default ``../shared/reference/openai-openapi.json`` beside the repository); a test
checks that the committed file is what the pinned reference gives.
"""

import argparse
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

EXTRACT_DIR = Path(__file__).parent / "openapi"
EXTRACT_PATH = EXTRACT_DIR / "requests.json"
REPOSITORY_ROOT = Path(__file__).resolve().parents[1]

# Where CI keeps the pinned reference: beside the clone (``../shared/reference``), or /work/shared.
REFERENCE_CANDIDATES = (
    REPOSITORY_ROOT.parent / "shared" / "reference" / "openai-openapi.json",
    Path("/work/shared/reference/openai-openapi.json"),
)

# The operations the simulator serves; a ``None`` body schema means the operation takes no body.
OPERATIONS: Mapping[str, tuple[str, str]] = {
    "create_chat_completion": ("post", "/chat/completions"),
    "create_response": ("post", "/responses"),
    "retrieve_response": ("get", "/responses/{response_id}"),
    "cancel_response": ("post", "/responses/{response_id}/cancel"),
    "list_models": ("get", "/models"),
    "create_batch": ("post", "/batches"),
}

# Keywords that only document (or steer code generators) and never change what validates.
_PROSE = frozenset({"description", "title", "example", "examples", "deprecated", "default", "discriminator"})
# Keywords whose value is one schema, a list of schemas, or a map of names to schemas.
_ONE_SCHEMA = frozenset({"items", "additionalProperties", "not", "propertyNames", "contains", "if", "then", "else"})
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SCHEMA_MAPS = frozenset({"properties", "patternProperties", "$defs", "definitions"})
_REF_PREFIX = "#/components/schemas/"


def extract(reference: Mapping[str, Any]) -> dict[str, Any]:
    """The extract: each operation's body schema name, and every schema those bodies reach."""
    paths = reference["paths"]
    schemas = reference["components"]["schemas"]
    operations: dict[str, Any] = {}
    roots: list[str] = []
    for name, (method, path) in OPERATIONS.items():
        operation = paths[path][method]
        body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
        body_schema = body["$ref"].removeprefix(_REF_PREFIX) if body else None
        operations[name] = {"method": method.upper(), "path": path, "body": body_schema}
        if body_schema:
            roots.append(body_schema)
    reached = _reached(roots, schemas)
    return {
        "source": {
            "repository": "https://github.com/openai/openai-openapi",
            "file": "openai-openapi.json",
            "info_version": reference["info"]["version"],
            "license": "MIT, Copyright (c) OpenAI; see LICENSE beside this file",
        },
        "operations": operations,
        "schemas": {name: _without_prose(schemas[name]) for name in sorted(reached)},
    }


def render(document: Mapping[str, Any]) -> str:
    """The extract as committed: stable key order, one trailing newline."""
    return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def find_reference() -> Path | None:
    """The pinned reference description, if this machine has it (CI does; a laptop may not)."""
    return next((path for path in REFERENCE_CANDIDATES if path.is_file()), None)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m llm_simulator extract-openapi``: rewrite the committed extract."""
    parser = argparse.ArgumentParser(prog="python -m llm_simulator extract-openapi", description=__doc__)
    parser.add_argument("--reference", type=Path, default=None, help="OpenAI's openai-openapi.json")
    parser.add_argument("--output", type=Path, default=EXTRACT_PATH)
    args = parser.parse_args(argv)
    reference = args.reference or find_reference()
    if reference is None:
        parser.error("no reference found; pass --reference PATH/TO/openai-openapi.json")
    document = extract(json.loads(reference.read_text(encoding="utf-8")))
    args.output.write_text(render(document), encoding="utf-8")
    print(f"wrote {args.output} ({len(document['schemas'])} schemas) from {reference}")  # noqa: T201


def _reached(roots: list[str], schemas: Mapping[str, Any]) -> set[str]:
    seen: set[str] = set()
    pending = list(roots)
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        pending.extend(ref.removeprefix(_REF_PREFIX) for ref in _refs(schemas[name]))
    return seen


def _refs(node: object) -> Iterator[str]:
    if isinstance(node, Mapping):
        if isinstance(ref := node.get("$ref"), str):
            yield ref
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _without_prose(schema: object) -> object:
    """``schema`` without its documentation keywords; property names are kept whatever they are."""
    if not isinstance(schema, Mapping):
        return schema
    kept: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _PROSE or key.startswith("x-"):
            continue
        if key in _ONE_SCHEMA:
            kept[key] = _without_prose(value)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            kept[key] = [_without_prose(item) for item in value]
        elif key in _SCHEMA_MAPS and isinstance(value, Mapping):
            kept[key] = {name: _without_prose(item) for name, item in value.items()}
        else:
            kept[key] = value
    return kept
