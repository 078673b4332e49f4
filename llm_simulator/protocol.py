"""OpenAI's Chat Completions wire format: the request as the SDK sends it, and the completion,
chunk and error objects as the SDK expects them back."""

import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FinishReason = Literal["stop", "length"]

# The API accepts many more request fields (temperature, seed, tools, ...); the simulator ignores them.
_TOLERANT = ConfigDict(extra="allow")


class ChatMessage(BaseModel):
    """One message; ``content`` is a string or a list of typed parts."""

    model_config = _TOLERANT

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        """The message's text, with the text parts of a multi-part message joined by newlines."""
        if isinstance(self.content, str):
            return self.content
        if not self.content:
            return ""
        return "\n".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")


class JsonSchemaFormat(BaseModel):
    """``response_format.json_schema``: a named schema, strict or not."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    name: str
    # Called ``schema`` on the wire; that name would shadow a BaseModel attribute.
    schema_: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormat(BaseModel):
    """``response_format``: free text, any JSON object, or a named JSON schema."""

    model_config = _TOLERANT

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None


class StreamOptions(BaseModel):
    """``stream_options``."""

    model_config = _TOLERANT

    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    """The body of ``POST /v1/chat/completions``, as far as the simulator needs it."""

    model_config = _TOLERANT

    model: str = Field(min_length=1)
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    response_format: ResponseFormat | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    # The enum is checked against OpenAI's schema before this model reads it.
    service_tier: str | None = None
    prompt_cache_key: str | None = None

    @property
    def token_limit(self) -> int | None:
        """The completion-token cap: ``max_completion_tokens`` supersedes the older ``max_tokens``."""
        return self.max_completion_tokens or self.max_tokens

    @property
    def schema_name(self) -> str | None:
        fmt = self.response_format
        return fmt.json_schema.name if fmt and fmt.type == "json_schema" and fmt.json_schema else None

    def schema_text(self) -> str | None:
        """The structured output's schema as the model reads it (counted as input), if there is one."""
        fmt = self.response_format
        if fmt is None or fmt.type != "json_schema" or fmt.json_schema is None:
            return None
        return json.dumps(fmt.json_schema.schema_, separators=(",", ":"))


@dataclass(frozen=True)
class ApiError:
    """An error response in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""

    status: int
    message: str
    type: str
    code: str | None = None
    param: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


@dataclass(frozen=True)
class Usage:
    """Token counts, as ``usage`` reports them."""

    prompt_tokens: int
    completion_tokens: int
    # The part of the prompt served from the prompt cache (``prompt_cache``).
    cached_tokens: int = 0

    def wire(self) -> dict[str, Any]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }


def new_completion_id() -> str:
    return f"chatcmpl-sim{secrets.token_hex(12)}"


def new_request_id() -> str:
    return f"req_{secrets.token_hex(16)}"


_FINGERPRINT = "fp_simulator"


def completion(
    *,
    completion_id: str,
    model: str,
    content: str,
    finish_reason: FinishReason,
    usage: Usage,
    refused: bool = False,
    service_tier: str = "default",
) -> dict[str, Any]:
    """A complete ``chat.completion`` object; ``refused`` puts ``content`` in ``refusal`` and nulls ``content``;
    ``service_tier`` is the tier that served it."""
    message: dict[str, Any] = (
        {"role": "assistant", "content": None, "refusal": content, "annotations": []}
        if refused
        else {"role": "assistant", "content": content, "refusal": None, "annotations": []}
    )
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish_reason,
            }
        ],
        "usage": usage.wire(),
        "service_tier": service_tier,
        "system_fingerprint": _FINGERPRINT,
    }


def chunk(
    *,
    completion_id: str,
    created: int,
    model: str,
    delta: dict[str, Any] | None,
    finish_reason: FinishReason | None = None,
    usage: Usage | None = None,
    include_usage: bool = False,
    service_tier: str = "default",
) -> dict[str, Any]:
    """A ``chat.completion.chunk``. ``delta=None`` makes the usage-only chunk (empty ``choices``)."""
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "service_tier": service_tier,
        "system_fingerprint": _FINGERPRINT,
        "choices": []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
    }
    if include_usage:
        # With include_usage, OpenAI sends "usage": null on every chunk but the last.
        body["usage"] = usage.wire() if usage else None
    return body


def models_list(models: list[str], created: int) -> dict[str, Any]:
    """``GET /v1/models``."""
    return {
        "object": "list",
        "data": [{"id": m, "object": "model", "created": created, "owned_by": "llm-simulator"} for m in models],
    }
