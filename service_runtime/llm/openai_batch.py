"""``StructuredBatches`` over OpenAI's Files and Batch APIs: one chat completion request per item,
sent as a JSONL file (``purpose="batch"``), run as a batch on ``/v1/chat/completions`` within the
``24h`` completion window, and read back from its output and error files.

Each request is the one ``ChatCompletions`` sends for the same prompt (the strict schema of the
reply type and its output cap; no tier: the Batch API is its own), and each reply is judged as a
chat reply is (truncated, filtered, refused or off-schema: an ``InvalidReply`` problem). The
provider's limits per batch (50,000 requests, a 200 MB input file) split a large set of items into
several batches, run at once; one model per batch, as the API requires.

Waiting: polled every ``poll_seconds``, for at most the completion window plus an hour (the
provider expires an unfinished batch at the window's end, keeping what it answered); past that
the batch is cancelled and what it answered is kept. A caller cancelled while waiting (Ctrl-C)
cancels the batch: nobody would read its answers. A transient error while polling is retried at
the next poll.

Metering: every line is recorded on the meter at the ``batch`` tier, under a ``call_id`` made from
the batch id and the line's ``custom_id``, so reading the same batch twice records each call once.
"""

import asyncio
import json
import logging
import time
from collections.abc import Iterator
from typing import Any, Final, TypeVar

import openai
import pydantic
from openai.types import Batch
from openai.types.chat import ChatCompletion

from contracts.events import LlmUsage
from service_runtime.llm.batch import BatchAnswer, BatchItem, batch_call_id
from service_runtime.llm.errors import classify, reply_problem
from service_runtime.llm.metering import LlmMeter
from service_runtime.logs import reason
from service_runtime.model_limits import output_cap
from service_runtime.outcomes import GiveUp, RetryLater
from service_runtime.strict_schema import chat_response_format

__all__ = ["OpenAiBatches"]

log = logging.getLogger(__name__)

ReplyT = TypeVar("ReplyT", bound=pydantic.BaseModel)

CHAT_ENDPOINT: Final = "/v1/chat/completions"
MAX_REQUESTS = 50_000
MAX_FILE_BYTES = 200 * 1024 * 1024
COMPLETION_WINDOW_SECONDS = 24 * 3600
# An expired batch is finalized (its answers written) after the window; cancelling takes up to 10 min.
_PAST_WINDOW_SECONDS = 3600.0
_CANCEL_SECONDS = 900.0
_TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})


class OpenAiBatches:
    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        model: str,
        poll_seconds: float,
        meter: LlmMeter | None = None,
        wait_seconds: float = COMPLETION_WINDOW_SECONDS + _PAST_WINDOW_SECONDS,
        max_requests: int = MAX_REQUESTS,
        max_file_bytes: int = MAX_FILE_BYTES,
    ) -> None:
        self._client = client
        self.model = model
        self._poll = poll_seconds
        self._meter = meter
        self._wait_seconds = wait_seconds
        self._max_requests = max_requests
        self._max_bytes = max_file_bytes

    async def run(self, items: list[BatchItem], reply_type: type[ReplyT]) -> list[BatchAnswer[ReplyT]]:
        if len({item.custom_id for item in items}) != len(items):
            raise ValueError("custom_id must be unique within a batch")
        lines = [(item.custom_id, self._line(item, reply_type)) for item in items]
        runs = [self._run_one(chunk, reply_type) for chunk in _chunks(lines, self._max_requests, self._max_bytes)]
        answered = {answer.custom_id: answer for answers in await asyncio.gather(*runs) for answer in answers}
        return [answered[item.custom_id] for item in items]

    def _line(self, item: BatchItem, reply_type: type[pydantic.BaseModel]) -> bytes:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": role, "content": text} for role, text in item.prompt.messages()],
            "response_format": chat_response_format(reply_type),
        }
        if (cap := output_cap(self.model, reply_type)) is not None:
            body["max_completion_tokens"] = cap
        if item.prompt.cache_key is not None:
            body["prompt_cache_key"] = item.prompt.cache_key
        line = {"custom_id": item.custom_id, "method": "POST", "url": CHAT_ENDPOINT, "body": body}
        return (json.dumps(line, separators=(",", ":"), ensure_ascii=False) + "\n").encode()

    async def _run_one(self, lines: list[tuple[str, bytes]], reply_type: type[ReplyT]) -> list[BatchAnswer[ReplyT]]:
        started = time.monotonic()
        try:
            uploaded = await self._client.files.create(
                file=(f"{reply_type.__name__}.jsonl", b"".join(line for _, line in lines)), purpose="batch"
            )
            batch = await self._client.batches.create(
                input_file_id=uploaded.id,
                endpoint=CHAT_ENDPOINT,
                completion_window="24h",
                metadata={"reply_type": reply_type.__name__},
            )
        except openai.OpenAIError as exc:
            raise (classify(exc).outcome or exc) from exc
        log.info("batch %s: %d %s requests to %s submitted", batch.id, len(lines), reply_type.__name__, self.model)
        try:
            batch = await self._wait(batch)
        except asyncio.CancelledError:
            await asyncio.shield(self._cancel(batch.id))
            raise
        if batch.status == "failed":
            errors = batch.errors.data if batch.errors is not None and batch.errors.data else []
            listed = "; ".join(f"line {e.line}: {e.code}: {e.message}" for e in errors[:5])
            raise GiveUp("llm_batch_failed", f"batch {batch.id}: {listed or 'no errors given'}")
        found: dict[str, dict[str, Any]] = {}
        for file_id in (batch.output_file_id, batch.error_file_id):
            if file_id:
                for raw in (await self._content(file_id)).splitlines():
                    if raw.strip():
                        parsed = json.loads(raw)
                        found[str(parsed.get("custom_id"))] = parsed
        seconds = time.monotonic() - started
        answers = []
        for custom_id, _ in lines:
            answer, outcome = self._answer(batch.id, custom_id, found.get(custom_id), reply_type)
            await self._meter_line(answer, outcome, seconds)
            answers.append(answer)
        log.info("batch %s %s: %d answered", batch.id, batch.status, sum(a.reply is not None for a in answers))
        return answers

    async def _wait(self, batch: Batch) -> Batch:
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self._wait_seconds
        cancelled_at: float | None = None
        while batch.status not in _TERMINAL:
            now = loop.time()
            if cancelled_at is None and now >= give_up_at:
                log.warning("batch %s still %s after %.0fs: cancelled", batch.id, batch.status, self._wait_seconds)
                cancelled_at = now
                await self._cancel(batch.id)
            elif cancelled_at is not None and now - cancelled_at > _CANCEL_SECONDS:
                raise RetryLater("llm_batch_timeout")
            await asyncio.sleep(self._poll)
            try:
                polled = await self._client.batches.retrieve(batch.id)
            except openai.OpenAIError as exc:
                if not isinstance(outcome := classify(exc).outcome, RetryLater):
                    raise (outcome or exc) from exc
                log.warning("batch %s: polling failed (%s); trying again", batch.id, outcome.reason)
                continue
            if polled.status != batch.status:
                log.info("batch %s: %s", batch.id, polled.status)
            batch = polled
        return batch

    async def _cancel(self, batch_id: str) -> None:
        try:
            await self._client.batches.cancel(batch_id)
        except openai.OpenAIError as exc:
            log.warning("batch %s: could not cancel it: %s", batch_id, reason(exc))

    async def _content(self, file_id: str) -> str:
        try:
            return (await self._client.files.content(file_id)).text
        except openai.OpenAIError as exc:
            raise (classify(exc).outcome or exc) from exc

    def _answer(
        self, batch_id: str, custom_id: str, line: dict[str, Any] | None, reply_type: type[ReplyT]
    ) -> tuple[BatchAnswer[ReplyT], str]:
        """The item's answer, and its outcome's metric label."""
        if line is None:
            return BatchAnswer(custom_id, batch_id, None, problem="no line for it in the batch's files"), "other"
        if error := line.get("error"):
            code = error.get("code")
            label = "timeout" if code == "request_timeout" else "other"
            return BatchAnswer(custom_id, batch_id, None, problem=f"{code}: {error.get('message')}"), label
        response = line.get("response") or {}
        status, body = response.get("status_code"), response.get("body") or {}
        if status != 200:
            message = (body.get("error") or {}).get("message") if isinstance(body, dict) else None
            label = "rate_limited" if status == 429 else "server_error" if (status or 0) >= 500 else "other"
            return BatchAnswer(custom_id, batch_id, None, problem=f"HTTP {status}: {message}"), label
        try:
            completion = ChatCompletion.model_validate(body)
        except pydantic.ValidationError as exc:
            return BatchAnswer(custom_id, batch_id, None, problem=f"unreadable completion: {exc}"), "other"
        usage = _usage(completion, self.model)
        reply, problem = _reply(completion, reply_type)
        return BatchAnswer(custom_id, batch_id, reply, usage, problem), "ok" if reply is not None else "invalid_reply"

    async def _meter_line(self, answer: BatchAnswer[Any], outcome: str, seconds: float) -> None:
        if self._meter is None:
            return
        usage = answer.usage or LlmUsage(model=self.model, calls=0)
        await self._meter.record(
            usage.model,
            outcome,
            seconds,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens,
            cached_tokens=usage.cached_tokens,
            service_tier="batch",
            call_id=batch_call_id(answer.batch_id, answer.custom_id),
        )


def _reply(completion: ChatCompletion, reply_type: type[ReplyT]) -> tuple[ReplyT | None, str]:
    """The validated reply, or what is wrong with it (as a chat reply is judged)."""
    if not completion.choices:
        return None, "the completion has no choices"
    choice = completion.choices[0]
    if choice.finish_reason == "length":
        return None, "the reply was truncated (finish_reason=length)"
    if choice.finish_reason == "content_filter":
        return None, "the reply was cut by the content filter"
    if choice.message.refusal:
        return None, f"the model refused: {choice.message.refusal[:200]}"
    try:
        return reply_type.model_validate_json(choice.message.content or ""), ""
    except pydantic.ValidationError as exc:
        return None, str(reply_problem(exc) or exc)


def _usage(completion: ChatCompletion, model: str) -> LlmUsage:
    usage = completion.usage
    details = usage.prompt_tokens_details if usage is not None else None
    return LlmUsage(
        model=completion.model or model,
        prompt_tokens=usage.prompt_tokens if usage is not None else 0,
        completion_tokens=usage.completion_tokens if usage is not None else 0,
        cached_tokens=(details.cached_tokens or 0) if details is not None else 0,
    )


def _chunks(lines: list[tuple[str, bytes]], max_requests: int, max_bytes: int) -> Iterator[list[tuple[str, bytes]]]:
    """The lines in batches the provider takes: at most ``max_requests`` lines and ``max_bytes`` each."""
    chunk: list[tuple[str, bytes]] = []
    size = 0
    for custom_id, line in lines:
        if chunk and (len(chunk) >= max_requests or size + len(line) > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append((custom_id, line))
        size += len(line)
    if chunk:
        yield chunk
