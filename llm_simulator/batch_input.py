"""A batch's input file read as the Batch API reads it while the batch is ``validating``.

Two kinds of problem, as the API has them:

- the file's own (a line that is not JSON, a missing or wrong ``custom_id``/``method``/``url``/
  ``body``, a ``custom_id`` used twice, streaming, no model or messages, a model the Batch API
  does not serve or another model than the earlier lines'): the batch fails, and
  ``errors.data`` lists each with its line;
- a request the endpoint itself refuses (its body against the published schema, a strict schema
  outside the subset, an output cap above the model's, ...): the batch runs, and that request's
  line in the error file carries the endpoint's status and error body, as a call would have.
"""

import json
from dataclasses import dataclass, field

from llm_simulator import batch_refusals, refusals
from llm_simulator.admission import chat_refusal
from llm_simulator.batch_refusals import BatchError
from llm_simulator.config import SimulatorConfig
from llm_simulator.edge import validated
from llm_simulator.model_table import limits_of
from llm_simulator.protocol import ApiError, ChatCompletionRequest
from llm_simulator.request_validation import refusal

__all__ = ["BatchRequest", "ReadInput", "read_input"]

# A file with more problems than this fails with the first ones only (the simulator's bound).
MAX_ERRORS_LISTED = 1000
_ENVELOPE = ("custom_id", "method", "url", "body")
_JSON_TYPES = {str: "a string", int: "an integer", float: "a decimal", bool: "a boolean", list: "an array"}


@dataclass(frozen=True)
class BatchRequest:
    """One request of the file: the chat request to answer, or the endpoint's refusal of it."""

    line: int
    custom_id: str
    chat: ChatCompletionRequest | None
    refused: ApiError | None = None


@dataclass
class ReadInput:
    requests: list[BatchRequest] = field(default_factory=list)
    errors: list[BatchError] = field(default_factory=list)
    model: str | None = None


def read_input(content: bytes, endpoint: str, config: SimulatorConfig) -> ReadInput:
    read = ReadInput()
    seen: set[str] = set()
    for number, raw in enumerate(content.split(b"\n"), start=1):
        if not raw.strip():
            continue
        if len(read.errors) >= MAX_ERRORS_LISTED:
            break
        problems_before = len(read.errors)
        envelope = _envelope(raw, number, endpoint, read.errors)
        if envelope is None:
            continue
        custom_id, body = envelope
        if custom_id in seen:
            read.errors.append(batch_refusals.duplicate_custom_id(custom_id, number))
        seen.add(custom_id)
        _check_body(body, number, config, read)
        if len(read.errors) == problems_before:
            read.requests.append(_request(custom_id, body, number, config))
    if not read.errors and not read.requests:
        read.errors.append(batch_refusals.empty_file())
    if len(read.requests) > batch_refusals.MAX_REQUESTS:
        read.errors.append(batch_refusals.too_many_tasks(len(read.requests)))
    return read


def _envelope(raw: bytes, number: int, endpoint: str, errors: list[BatchError]) -> tuple[str, dict[str, object]] | None:
    """The line's ``custom_id`` and ``body`` if its envelope is sound; else its problems go to ``errors``."""
    try:
        line = json.loads(raw)
    except ValueError:
        errors.append(batch_refusals.invalid_json_line(number))
        return None
    if not isinstance(line, dict):
        errors.append(batch_refusals.not_an_object(number))
        return None
    missing = [name for name in _ENVELOPE if name not in line]
    errors.extend(batch_refusals.missing_parameter(name, number) for name in missing)
    if missing:
        return None
    sound = True
    for name, wanted in (("custom_id", str), ("method", str), ("url", str), ("body", dict)):
        if not isinstance(line[name], wanted):
            expected = "an object" if wanted is dict else "a string"
            refused = refusals.invalid_type(name, [expected], _json_type(line[name]))
            errors.append(batch_refusals.from_refusal(refused, number))
            sound = False
    if not sound:
        return None
    if line["method"] != "POST":
        errors.append(batch_refusals.from_refusal(refusals.invalid_value("method", line["method"], ["POST"]), number))
        sound = False
    if line["url"] != endpoint:
        errors.append(batch_refusals.url_mismatch(number))
        sound = False
    return (line["custom_id"], line["body"]) if sound else None


def _check_body(body: dict[str, object], number: int, config: SimulatorConfig, read: ReadInput) -> None:
    """The body's problems that fail the whole batch: streaming, no model or messages, the model."""
    if body.get("stream") is True:
        read.errors.append(batch_refusals.streaming_unsupported(number))
    for name in ("model", "messages"):
        if name not in body:
            read.errors.append(batch_refusals.body_parameter_required(name, number))
    model = body.get("model")
    if not isinstance(model, str):
        return
    if limits_of(model) is None or model not in config.models:
        read.errors.append(batch_refusals.model_not_supported(model, number))
    elif read.model is None:
        read.model = model
    elif model != read.model:
        read.errors.append(batch_refusals.model_mismatch(model, read.model, number))


def _request(custom_id: str, body: dict[str, object], number: int, config: SimulatorConfig) -> BatchRequest:
    """The request to run, or the refusal the chat endpoint would have answered to its body."""
    if (refused := refusal("create_chat_completion", body)) is not None:
        return BatchRequest(number, custom_id, None, refused)
    chat = validated(body, ChatCompletionRequest)
    if isinstance(chat, ApiError):
        return BatchRequest(number, custom_id, None, chat)
    return BatchRequest(number, custom_id, chat, chat_refusal(chat, config))


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return _JSON_TYPES.get(type(value), "an object")
