"""The OpenAI client as every LLM-calling service builds it, and what its errors mean for delivery.

One layer owns retries: the JetStream consumer (bounded by ``max_deliver``, with delays that
honour Retry-After). The SDK's own retries are off, so a message's attempts are the only paid
attempts: no 3 SDK tries x 5 deliveries = 15 calls.
"""

import asyncio
import json
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Generic, TypeVar

import openai
import pydantic
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletionMessageParam
from pydantic import Field, SecretStr

from contracts.events import LlmUsage
from service_runtime.delivery import GiveUp, Misconfigured, RetryLater
from service_runtime.model_limits import limits_of, output_cap
from service_runtime.settings import ServiceSettings
from service_runtime.strict_schema import chat_response_format, check_wire_schemas
from service_runtime.tracing import llm_call

if TYPE_CHECKING:
    from service_runtime.metering import LlmMeter

log = logging.getLogger(__name__)


class LlmSettings(ServiceSettings):
    """Settings of a service that calls an OpenAI-compatible server."""

    openai_api_key: SecretStr = Field(validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, validation_alias="OPENAI_BASE_URL")
    # The SDK's timeout is per read (per streamed chunk), not a total; the total is ours.
    llm_read_timeout_seconds: float = Field(60.0, gt=0, validation_alias="LLM_READ_TIMEOUT_SECONDS")
    # USD per million tokens, {"model": [prompt, completion]} as JSON; unset = OpenAI's list prices
    # for the common models (service_runtime.metering.DEFAULT_PRICES).
    llm_prices: dict[str, tuple[float, float]] | None = Field(None, validation_alias="LLM_PRICES")


class InvalidReply(Exception):
    """The model answered, but not with something we can store (malformed, truncated, refused)."""


def check_llm_setup(model: str, reply_types: Iterable[type[pydantic.BaseModel]]) -> None:
    """What a service checks before it starts: every schema it will send is one the provider
    accepts (else ``WireSchemaError``, naming the keyword and its path), and the model is one we
    know the output limit of (else a warning: calls then carry only their reply types' caps)."""
    check_wire_schemas(reply_types)
    if limits_of(model) is None:
        log.warning("model %r is not in service_runtime.model_limits: its output limit is unknown", model)


def build_openai_client(settings: LlmSettings) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.openai_base_url,
        max_retries=0,
        timeout=openai.Timeout(settings.llm_read_timeout_seconds, connect=10.0),
    )


def reply_problem(exc: BaseException) -> InvalidReply | None:
    """The reply-level failures a regeneration may fix, or None."""
    if isinstance(exc, openai.LengthFinishReasonError):
        return InvalidReply("the reply was truncated (finish_reason=length)")
    if isinstance(exc, openai.ContentFilterFinishReasonError):
        return InvalidReply("the reply was cut by the content filter")
    if isinstance(exc, pydantic.ValidationError):
        first = exc.errors()[0] if exc.errors() else {"msg": str(exc), "loc": ()}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return InvalidReply(
            f"the reply does not match the schema ({exc.error_count()} errors; {where}: {first['msg']})"
        )
    if isinstance(exc, json.JSONDecodeError):
        return InvalidReply(f"the reply is not valid JSON ({exc.msg})")
    return None


# 400s that every call of this deployment would get alike (the schema we send, a parameter or an
# output cap the API does not take): the service's fault, not the request's. Failing requests one
# by one would burn the whole queue; the consumer halts instead (``Misconfigured``).
_MISCONFIGURED_CODES = frozenset({"invalid_json_schema", "unknown_parameter", "unsupported_parameter"})
_MISCONFIGURED_MESSAGES = ("Invalid schema for", "Unrecognized request argument", "Unknown parameter")


def delivery_outcome(exc: BaseException) -> RetryLater | GiveUp | Misconfigured | None:
    """Map an LLM transport error to transient (retry later), permanent (give up) or the service's
    own misconfiguration (halt), else None."""
    if isinstance(exc, openai.BadRequestError) and _is_misconfiguration(exc):
        return Misconfigured("llm_misconfigured", f"HTTP 400: {exc.message}")
    if isinstance(exc, openai.RateLimitError):
        if _error_code(exc) == "insufficient_quota":
            return GiveUp("llm_quota_exhausted", "the LLM account has no quota left")
        return RetryLater("llm_rate_limited", _retry_after_seconds(exc))
    if isinstance(exc, openai.APITimeoutError | TimeoutError):
        return RetryLater("llm_timeout")
    if isinstance(exc, openai.APIConnectionError):
        return RetryLater("llm_unreachable")
    if isinstance(exc, openai.InternalServerError):
        return RetryLater("llm_server_error", _retry_after_seconds(exc))
    if isinstance(exc, openai.ConflictError):
        return RetryLater("llm_conflict")
    if isinstance(exc, openai.APIStatusError):
        return GiveUp("llm_rejected_request", f"HTTP {exc.status_code}: {exc.message}")
    return None


def _is_misconfiguration(exc: openai.BadRequestError) -> bool:
    message = _error_message(exc)
    too_large = _error_code(exc) == "invalid_value" and "is too large" in message
    return _error_code(exc) in _MISCONFIGURED_CODES or message.startswith(_MISCONFIGURED_MESSAGES) or too_large


def _error_message(exc: openai.APIStatusError) -> str:
    body = exc.body
    inner = body.get("error", body) if isinstance(body, dict) else None
    if isinstance(inner, dict) and isinstance(inner.get("message"), str):
        return str(inner["message"])
    return str(exc.message)


def _error_code(exc: openai.APIStatusError) -> str | None:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("code"), str):
            return str(inner["code"])
    return getattr(exc, "code", None)


def _retry_after_seconds(exc: openai.APIStatusError) -> float | None:
    headers = exc.response.headers
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    if (value := headers.get("retry-after")) is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
        except (TypeError, ValueError):
            return None


ReplyT = TypeVar("ReplyT", bound=pydantic.BaseModel)


class StructuredReply(Generic[ReplyT]):
    """A validated reply and what it cost (all attempts, including rejected ones)."""

    def __init__(self, parsed: ReplyT, usage: LlmUsage) -> None:
        self.parsed = parsed
        self.usage = usage


async def structured_completion(
    client: openai.AsyncOpenAI,
    *,
    model: str,
    messages: list[ChatCompletionMessageParam],
    reply_type: type[ReplyT],
    deadline_seconds: float,
    attempts: int,
    stream: bool,
    invalid_is_transient: bool = False,
    meter: "LlmMeter | None" = None,
) -> StructuredReply[ReplyT]:
    """One structured-output chat completion, validated against ``reply_type``.

    A reply that fails validation (malformed, truncated, refused, off-schema) is regenerated up to
    ``attempts`` times in total; then ``GiveUp("invalid_llm_reply")``, or ``RetryLater`` when
    ``invalid_is_transient`` (cheap calls worth another delivery). Transport faults raise
    ``RetryLater``/``GiveUp`` for the consumer to act on. Streaming keeps long calls alive chunk by
    chunk; ``deadline_seconds`` bounds the whole call, whatever the per-chunk read timeout.
    """
    prompt_tokens = completion_tokens = calls = 0
    problem: InvalidReply | None = None
    for _ in range(attempts):
        calls += 1
        started = time.monotonic()
        try:
            async with asyncio.timeout(deadline_seconds):
                with llm_call(model) as span:
                    raw = await _complete(client, model, messages, reply_type, stream)
                    span.replied(
                        raw.model,
                        input_tokens=raw.prompt_tokens,
                        output_tokens=raw.completion_tokens,
                        finish_reason=raw.finish_reason,
                    )
        except Exception as exc:
            if meter is not None:
                meter.failed(model, exc, time.monotonic() - started)
            if (outcome := delivery_outcome(exc)) is not None:
                raise outcome from exc
            raise
        prompt_tokens += raw.prompt_tokens
        completion_tokens += raw.completion_tokens
        try:
            parsed = raw.validated(reply_type)
        except InvalidReply as exc:
            problem = exc
            await _meter_reply(meter, raw, "invalid_reply", started)
            continue
        await _meter_reply(meter, raw, "ok", started)
        usage = LlmUsage(model=raw.model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens, calls=calls)
        return StructuredReply(parsed, usage)
    if invalid_is_transient:
        raise RetryLater("invalid_llm_reply")
    raise GiveUp("invalid_llm_reply", f"{attempts} attempt(s); last: {problem}")


async def _meter_reply(meter: "LlmMeter | None", raw: "_RawReply", outcome: str, started: float) -> None:
    if meter is not None:
        await meter.record(
            raw.model,
            outcome,
            time.monotonic() - started,
            prompt_tokens=raw.prompt_tokens,
            completion_tokens=raw.completion_tokens,
            cached_tokens=raw.cached_tokens,
        )


@dataclass
class _RawReply:
    model: str
    content: str = ""
    refusal: str = ""
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0

    def validated(self, reply_type: type[ReplyT]) -> ReplyT:
        if self.finish_reason == "length":
            raise InvalidReply("the reply was truncated (finish_reason=length)")
        if self.finish_reason == "content_filter":
            raise InvalidReply("the reply was cut by the content filter")
        if self.refusal:
            raise InvalidReply(f"the model refused: {self.refusal[:200]}")
        try:
            return reply_type.model_validate_json(self.content)
        except pydantic.ValidationError as exc:
            raise reply_problem(exc) or InvalidReply(str(exc)) from exc


async def _complete(
    client: openai.AsyncOpenAI,
    model: str,
    messages: list[ChatCompletionMessageParam],
    reply_type: type[ReplyT],
    stream: bool,
) -> _RawReply:
    response_format = chat_response_format(reply_type)
    cap = output_cap(model, reply_type)
    max_completion_tokens = cap if cap is not None else openai.omit
    if not stream:
        completion = await client.chat.completions.create(
            model=model,
            messages=messages,
            response_format=response_format,
            max_completion_tokens=max_completion_tokens,
        )
        choice = completion.choices[0]
        return _RawReply(
            model=completion.model or model,
            content=choice.message.content or "",
            refusal=choice.message.refusal or "",
            finish_reason=choice.finish_reason,
            prompt_tokens=completion.usage.prompt_tokens if completion.usage else 0,
            completion_tokens=completion.usage.completion_tokens if completion.usage else 0,
            cached_tokens=_cached(completion.usage),
        )
    # Raw deltas, validated once at the end. The SDK's ``.stream()`` helper re-parses the partial
    # JSON on every chunk: at a thousand concurrent plans that saturates the event loop, leases
    # are renewed late and plans get redelivered and bought twice (see docs/reliability.md).
    reply = _RawReply(model=model)
    content: list[str] = []
    refusal: list[str] = []
    chunks = await client.chat.completions.create(
        model=model,
        messages=messages,
        response_format=response_format,
        stream=True,
        stream_options={"include_usage": True},
        max_completion_tokens=max_completion_tokens,
    )
    async with chunks:
        async for chunk in chunks:
            reply.model = chunk.model or reply.model
            if chunk.usage is not None:
                reply.prompt_tokens = chunk.usage.prompt_tokens
                reply.completion_tokens = chunk.usage.completion_tokens
                reply.cached_tokens = _cached(chunk.usage)
            for part in chunk.choices:
                if part.delta.content:
                    content.append(part.delta.content)
                if part.delta.refusal:
                    refusal.append(part.delta.refusal)
                if part.finish_reason is not None:
                    reply.finish_reason = part.finish_reason
    reply.content = "".join(content)
    reply.refusal = "".join(refusal)
    return reply


def _cached(usage: CompletionUsage | None) -> int:
    details = usage.prompt_tokens_details if usage is not None else None
    return (details.cached_tokens or 0) if details is not None else 0
