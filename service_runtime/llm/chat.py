"""The portable adapter of ``StructuredCalls``: one structured-output chat completion per call.

Works with any OpenAI-compatible server. A call lives only in its connection: cut short (a crash,
a cancel) it cannot be resumed, so ``forget`` and ``abandon`` have nothing to do.

A streamed call has three deadlines, each ending it with ``RetryLater("llm_timeout")`` (metered as
``timeout``), so a provider that accepted the request and went quiet costs a short wait, not the
whole deadline:

- ``first_token_seconds``: no content (or refusal) within this long after the request was sent. A
  role-only chunk does not count: a server can send one and then nothing.
- idle between chunks: the client's read timeout (``LLM_READ_TIMEOUT_SECONDS``), which the SDK
  applies to every read of the stream, so a stream that stops mid-way ends that long after its
  last chunk.
- ``deadline_seconds``: the whole call, however steadily chunks arrive.

A non-streamed call has one body to wait for: the first-token deadline does not apply to it (the
read timeout bounds the wait for the body, ``deadline_seconds`` the whole call).
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, TypeVar

import openai
import pydantic
from openai.types import CompletionUsage
from openai.types.chat import ChatCompletion, ChatCompletionMessageParam

from contracts.events import LlmUsage
from service_runtime.llm.errors import InvalidReply, classify, reply_problem
from service_runtime.llm.metering import LlmMeter
from service_runtime.llm.port import Prompt, StructuredReply
from service_runtime.llm.raw import post_json, read_model
from service_runtime.llm.sse import chunks_of
from service_runtime.llm.terms import current_terms, heard_limits
from service_runtime.model_limits import output_cap
from service_runtime.strict_schema import chat_response_format
from service_runtime.tracing import llm_call

__all__ = ["ChatCompletions"]

log = logging.getLogger(__name__)

ReplyT = TypeVar("ReplyT", bound=pydantic.BaseModel)


class ChatCompletions:
    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        model: str,
        deadline_seconds: float,
        first_token_seconds: float | None = None,
        stream: bool = True,
        meter: LlmMeter | None = None,
    ) -> None:
        self._client = client
        self.model = model
        self._deadline = deadline_seconds
        self._first_token = first_token_seconds
        self._stream = stream
        self._meter = meter

    async def call(self, key: str, prompt: Prompt, reply_type: type[ReplyT]) -> StructuredReply[ReplyT]:
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._deadline):
                with llm_call(self.model) as span:
                    raw = await self._complete(prompt, reply_type)
                    span.replied(
                        raw.model,
                        input_tokens=raw.prompt_tokens,
                        output_tokens=raw.completion_tokens,
                        finish_reason=raw.finish_reason,
                    )
        except Exception as exc:
            if isinstance(exc, openai.APIStatusError):
                heard_limits(exc.response.headers)
            if self._meter is not None:
                self._meter.failed(self.model, exc, time.monotonic() - started)
            if (outcome := classify(exc).outcome) is not None:
                raise outcome from exc
            raise
        usage = LlmUsage(
            model=raw.model,
            prompt_tokens=raw.prompt_tokens,
            completion_tokens=raw.completion_tokens,
            cached_tokens=raw.cached_tokens,
        )
        try:
            parsed = raw.validated(reply_type, usage)
        except InvalidReply:
            await self._meter_reply(raw, "invalid_reply", started)
            raise
        await self._meter_reply(raw, "ok", started)
        return StructuredReply(parsed, usage)

    async def forget(self, key: str) -> None:
        """Nothing is kept: a chat call lives only in its connection."""

    async def abandon(self, key: str) -> None:
        """Nothing runs on: stopping the call closed its connection, and the provider stops with it."""

    async def _meter_reply(self, raw: "_RawReply", outcome: str, started: float) -> None:
        if self._meter is not None:
            await self._meter.record(
                raw.model,
                outcome,
                time.monotonic() - started,
                prompt_tokens=raw.prompt_tokens,
                completion_tokens=raw.completion_tokens,
                cached_tokens=raw.cached_tokens,
                service_tier=raw.service_tier,
            )

    async def _complete(self, prompt: Prompt, reply_type: type[pydantic.BaseModel]) -> "_RawReply":
        messages: list[ChatCompletionMessageParam] = [
            {"role": role, "content": text}  # type: ignore[misc]  # role is "system" or "user"
            for role, text in prompt.messages()
        ]
        cap = output_cap(self.model, reply_type)
        tier = current_terms().tier
        # The body ``create`` would send, built here and sent as bytes (``raw.post_json``: the SDK's
        # request path, headers, timeouts and HTTP errors): ``create`` walks every parameter, the
        # reply's schema included, through its type-driven transform first.
        body: dict[str, object] = {
            "model": self.model,
            "messages": messages,
            "response_format": chat_response_format(reply_type),
        }
        if cap is not None:
            body["max_completion_tokens"] = cap
        if prompt.cache_key is not None:
            body["prompt_cache_key"] = prompt.cache_key
        if tier != "default":
            body["service_tier"] = tier
        if not self._stream:
            raw = await post_json(self._client, "/chat/completions", body)
            heard_limits(raw.headers)
            completion = await read_model(raw, ChatCompletion)
            choice = completion.choices[0]
            return _RawReply(
                model=completion.model or self.model,
                content=choice.message.content or "",
                refusal=choice.message.refusal or "",
                finish_reason=choice.finish_reason,
                prompt_tokens=completion.usage.prompt_tokens if completion.usage else 0,
                completion_tokens=completion.usage.completion_tokens if completion.usage else 0,
                cached_tokens=_cached(completion.usage),
                service_tier=completion.service_tier or "default",
            )
        # Raw deltas, validated once at the end. The SDK's ``.stream()`` helper re-parses the partial
        # JSON on every chunk: at a thousand concurrent plans that saturates the event loop, leases
        # are renewed late and plans get redelivered and bought twice (see docs/reliability.md).
        # And its stream builds a typed model per chunk: over a week's reply that was a quarter of
        # the planner's CPU. So the events come back as plain dicts, read by ``sse.chunks_of``
        # (which raises an error event inside the stream as ``APIError``, as the SDK's stream
        # does, at a fraction of its CPU per chunk).
        body |= {"stream": True, "stream_options": {"include_usage": True}}
        # Disarmed at the first content or refusal delta; until then its TimeoutError ends the call
        # as the total deadline's would.
        first_token = asyncio.timeout(self._first_token)
        try:
            async with first_token:
                # As orjson bytes (``raw.post_json``); the reply comes back unread and its events
                # are read by ``sse.chunks_of``.
                response = await post_json(self._client, "/chat/completions", body)
                heard_limits(response.headers)
                try:
                    return await _read(chunks_of(response), _RawReply(model=self.model), first_token)
                finally:
                    await response.close()
        except TimeoutError:
            if first_token.expired():
                log.warning("%s: no first token within %gs; stopped", self.model, self._first_token)
            raise


async def _read(chunks: AsyncIterator[dict[str, Any]], reply: "_RawReply", first_token: asyncio.Timeout) -> "_RawReply":
    """The streamed reply, joined; ``first_token`` disarmed once content or a refusal arrives."""
    content: list[str] = []
    refusal: list[str] = []
    awaiting_first = first_token.when() is not None
    async for chunk in chunks:
        reply.model = chunk.get("model") or reply.model
        reply.service_tier = chunk.get("service_tier") or reply.service_tier
        if (usage := chunk.get("usage")) is not None:
            reply.prompt_tokens = usage.get("prompt_tokens") or 0
            reply.completion_tokens = usage.get("completion_tokens") or 0
            reply.cached_tokens = (usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
        for part in chunk.get("choices") or ():
            delta = part.get("delta") or {}
            if text := delta.get("content"):
                content.append(text)
            if text := delta.get("refusal"):
                refusal.append(text)
            if part.get("finish_reason") is not None:
                reply.finish_reason = part["finish_reason"]
        if awaiting_first and (content or refusal):
            first_token.reschedule(None)
            awaiting_first = False
    reply.content = "".join(content)
    reply.refusal = "".join(refusal)
    return reply


@dataclass
class _RawReply:
    model: str
    content: str = ""
    refusal: str = ""
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    service_tier: str = "default"

    def validated(self, reply_type: type[ReplyT], usage: LlmUsage) -> ReplyT:
        if self.finish_reason == "length":
            raise InvalidReply("the reply was truncated (finish_reason=length)", usage)
        if self.finish_reason == "content_filter":
            raise InvalidReply("the reply was cut by the content filter", usage)
        if self.refusal:
            raise InvalidReply(f"the model refused: {self.refusal[:200]}", usage)
        try:
            return reply_type.model_validate_json(self.content)
        except pydantic.ValidationError as exc:
            raise reply_problem(exc, usage) or InvalidReply(str(exc), usage) from exc


def _cached(usage: CompletionUsage | None) -> int:
    details = usage.prompt_tokens_details if usage is not None else None
    return (details.cached_tokens or 0) if details is not None else 0
