"""OpenAI's Responses API wire format: the create request as the SDK sends it, and the ``response``
object as the SDK parses it back (``openai.types.responses.Response``).

A create request is read as the chat request it amounts to (:meth:`ResponseCreateRequest.as_chat`),
so the one simulated model answers both APIs with the same content, faults and pacing.
"""

import secrets
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from llm_simulator.protocol import ChatCompletionRequest, ChatMessage, JsonSchemaFormat, ResponseFormat, Usage

ResponseStatus = Literal["queued", "in_progress", "completed", "incomplete", "failed", "cancelled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "incomplete", "failed", "cancelled"})

# Many more request fields exist (tools, reasoning, temperature, ...); the simulator ignores them.
_TOLERANT = ConfigDict(extra="allow")
# The text-bearing parts of an input message; images, files and audio carry no text to read.
_TEXT_PARTS = ("input_text", "output_text", "text")


class InputItem(BaseModel):
    """One item of ``input``: a message with a role, whose content is a string or typed parts.

    Items without a role (tool calls, their outputs, reasoning) are accepted and not read."""

    model_config = _TOLERANT

    type: str | None = None
    role: str | None = None
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        if not self.content:
            return ""
        return "\n".join(str(part.get("text", "")) for part in self.content if part.get("type") in _TEXT_PARTS)


class TextFormat(BaseModel):
    """``text.format``: free text, any JSON object, or a named JSON schema (flat, unlike chat's)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    type: Literal["text", "json_object", "json_schema"]
    name: str | None = None
    # Called ``schema`` on the wire; that name would shadow a BaseModel attribute.
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    strict: bool | None = None
    description: str | None = None

    @model_validator(mode="after")
    def _schema_is_named(self) -> "TextFormat":
        if self.type == "json_schema" and (not self.name or self.schema_ is None):
            raise ValueError("a json_schema format needs a name and a schema")
        return self

    def wire(self) -> dict[str, Any]:
        if self.type != "json_schema":
            return {"type": self.type}
        return {
            "type": "json_schema",
            "name": self.name,
            "schema": self.schema_,
            "strict": self.strict,
            "description": self.description,
        }


class TextConfig(BaseModel):
    """``text``: the output's format (and, in the real API, its verbosity)."""

    model_config = _TOLERANT

    format: TextFormat | None = None


class ResponseCreateRequest(BaseModel):
    """The body of ``POST /v1/responses``, as far as the simulator needs it."""

    model_config = _TOLERANT

    model: str = Field(min_length=1)
    input: str | list[InputItem]
    instructions: str | None = None
    text: TextConfig | None = None
    background: bool | None = False
    store: bool | None = True
    stream: bool | None = False
    metadata: dict[str, str] | None = None
    max_output_tokens: int | None = Field(None, ge=1)
    service_tier: str | None = None
    prompt_cache_key: str | None = None

    @property
    def text_format(self) -> TextFormat:
        return self.text.format if self.text and self.text.format else TextFormat(type="text")

    def as_chat(self) -> ChatCompletionRequest:
        """The chat request this amounts to: instructions as a system message, then the input's
        messages in order, the text format as ``response_format``, the output cap as the token cap."""
        messages: list[ChatMessage] = []
        if self.instructions:
            messages.append(ChatMessage(role="system", content=self.instructions))
        if isinstance(self.input, str):
            messages.append(ChatMessage(role="user", content=self.input))
        else:
            messages.extend(ChatMessage(role=item.role, content=item.text()) for item in self.input if item.role)
        if not messages:
            messages.append(ChatMessage(role="user", content=""))
        fmt = self.text_format
        response_format = ResponseFormat(type=fmt.type)
        if fmt.type == "json_schema":
            response_format = ResponseFormat(
                type="json_schema",
                json_schema=JsonSchemaFormat(name=fmt.name or "", schema=fmt.schema_ or {}, strict=fmt.strict),
            )
        return ChatCompletionRequest(
            model=self.model,
            messages=messages,
            response_format=response_format,
            max_completion_tokens=self.max_output_tokens,
            service_tier=self.service_tier,
            prompt_cache_key=self.prompt_cache_key,
        )


def new_response_id() -> str:
    return f"resp_sim{secrets.token_hex(24)}"


def new_message_id() -> str:
    return f"msg_sim{secrets.token_hex(24)}"


def response_usage(usage: Usage) -> dict[str, Any]:
    """``usage`` as the Responses API reports it (input/output, not prompt/completion)."""
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens, "cache_write_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def output_message(
    message_id: str, text: str, status: Literal["completed", "incomplete"], *, refused: bool = False
) -> dict[str, Any]:
    """One assistant message in ``output``, holding the text as one ``output_text`` part, or as one
    ``refusal`` part when the model declined."""
    part: dict[str, Any] = (
        {"type": "refusal", "refusal": text}
        if refused
        else {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    )
    return {
        "type": "message",
        "id": message_id,
        "role": "assistant",
        "status": status,
        "content": [part],
    }


def response_object(
    *,
    response_id: str,
    created_at: int,
    status: ResponseStatus,
    request: ResponseCreateRequest,
    output: list[dict[str, Any]],
    usage: Usage | None = None,
    error: dict[str, str] | None = None,
    incomplete_reason: str | None = None,
    completed_at: int | None = None,
    service_tier: str = "default",
) -> dict[str, Any]:
    """A ``response`` object in any status; ``service_tier`` is the tier that serves it."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": bool(request.background),
        "completed_at": completed_at,
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "instructions": request.instructions,
        "max_output_tokens": request.max_output_tokens,
        "max_tool_calls": None,
        "metadata": request.metadata or {},
        "model": request.model,
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": service_tier,
        "store": request.store is not False,
        "temperature": 1.0,
        "text": {"format": request.text_format.wire(), "verbosity": "medium"},
        "tool_choice": "auto",
        "tools": [],
        "top_logprobs": 0,
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": response_usage(usage) if usage is not None else None,
        "user": None,
    }
