"""The re-attaching adapter of ``StructuredCalls``: OpenAI's Responses API in background mode.

``responses.create(background=True)`` returns a response id at once while the model writes. The
id goes into a record (``ResponseIds``, a key-value bucket in production) under the call's key
*before* the adapter starts waiting, so a call made again under that key (a request redelivered
after a crash, a kill or a lost lease, on any replica) finds the id and waits for that same
response: each call is paid for once. The waiting is polling (``responses.retrieve``, scheduled by
``polling.PollSchedule``), which costs nothing but a short request.

Outcomes: ``completed`` is validated against the reply type; an invalid or ``incomplete`` reply
raises ``InvalidReply`` and its record is forgotten (the next call under the key buys anew);
``failed`` is transient (``RetryLater``) unless its code says otherwise, ``cancelled`` final
(``GiveUp("llm_cancelled")``); a response the provider no longer knows (404) is replaced by a new
one. Two watchdogs stop paying for a response that will not finish in time: one still ``queued``
(never picked up) ``queued_seconds`` after its creation, and one unfinished at ``deadline_seconds``,
are cancelled and forgotten, and the call raises ``RetryLater`` (``llm_stuck_queued``,
``llm_timeout``) so the next delivery starts a new one. Errors map through ``errors.classify``: the
consumer owns retries of the create call (and a redelivery re-attaches for free), while a poll that
fails transiently, or reads a body that is not a response, is just made again at the next
interval: the paid-for response is whole at the provider.
"""

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import openai
import pydantic
from openai.types.responses import Response, ResponseFormatTextConfigParam, ResponseInputParam

from contracts.events import LlmUsage
from service_runtime.llm.errors import InvalidReply
from service_runtime.llm.finished import TERMINAL, reply_in
from service_runtime.llm.metering import LlmMeter
from service_runtime.llm.polling import PollSchedule
from service_runtime.llm.port import Prompt, StructuredReply
from service_runtime.llm.response_ids import RecordConflict, ResponseIds, ResponseRecord
from service_runtime.llm.responses_api import ResponsesApi, Unfinished
from service_runtime.model_limits import output_cap
from service_runtime.outcomes import GiveUp, RetryLater
from service_runtime.strict_schema import responses_text_format

__all__ = ["BackgroundResponses"]

log = logging.getLogger(__name__)

# The ledger's call id of a background response: derived from its response id, the same in every
# process that sees it finish.
_RESPONSE_CALLS = uuid.UUID("6f1c2a4e-8d3b-4f5a-9c7e-2b1d0e9f8a76")


ReplyT = TypeVar("ReplyT", bound=pydantic.BaseModel)

# The queued watchdog's poll comes this long after the moment a response would be stuck, so the
# poll finds it past the moment rather than a hair before.
_WATCHDOG_MARGIN_SECONDS = 0.05


class _StuckQueued(Exception):
    """Raised inside the deadline's scope, handled outside it: see ``_wait``."""


class BackgroundResponses:
    """Structured-output calls as background responses, each recorded under a key so that
    whichever process handles the key next re-attaches to it instead of buying it again."""

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        ids: ResponseIds,
        *,
        model: str,
        deadline_seconds: float,
        poll_interval_seconds: float,
        queued_seconds: float | None = None,
        max_concurrent_polls: int = 32,
        store: bool = True,
        clock: Callable[[], float] = time.time,
        meter: LlmMeter | None = None,
    ) -> None:
        self._api = ResponsesApi(
            client, model=model, store=store, max_concurrent_polls=max_concurrent_polls, meter=meter
        )
        self._meter = meter
        self._ids = ids
        self.model = model
        self._deadline = deadline_seconds
        self._queued = queued_seconds
        self._schedule = PollSchedule(poll_interval_seconds)
        self._clock = clock

    async def call(self, key: str, prompt: Prompt, reply_type: type[ReplyT]) -> StructuredReply[ReplyT]:
        """The validated reply of the response recorded under ``key`` (however it ends), else of a
        new one; ``InvalidReply`` (the record forgotten) when it is not usable."""
        messages: ResponseInputParam = [
            {"role": role, "content": text}  # type: ignore[misc]  # role is "system" or "user"
            for role, text in prompt.messages()
        ]
        text_format = responses_text_format(reply_type)
        cap = output_cap(self.model, reply_type)
        input_tokens = output_tokens = lost = 0
        record = await self._ids.get(key)
        if record is not None:
            log.info("%s: re-attaching to response %s", key, record.response_id)
        # None: the next round starts a new response (replacing ``record``).
        attach = record
        while True:
            created: Response | None = None
            if attach is None:
                record, created = await self._start(
                    key, messages, text_format, cap, cache_key=prompt.cache_key, replacing=record
                )
                attach = record
            response = await self._wait(key, attach, created, reply_type.__name__)
            if response is not None:
                break
            lost += 1
            if lost > 1:
                # A provider that forgets responses this fast is not keeping them at all.
                raise RetryLater("llm_response_lost")
            log.warning("%s: response %s is gone; starting a new one", key, attach.response_id)
            attach = None
        if response.status == "completed" and response.completed_at is not None:
            self._schedule.finished(reply_type.__name__, response.completed_at - response.created_at)
        if response.usage is not None:
            input_tokens += response.usage.input_tokens
            output_tokens += response.usage.output_tokens
        usage = LlmUsage(
            model=response.model or self.model,
            prompt_tokens=input_tokens,
            completion_tokens=output_tokens,
            cached_tokens=_cached(response),
            calls=attach.calls,
        )
        verdict = await self._judge_metered(key, attach, response, reply_type)
        if isinstance(verdict, InvalidReply):
            # Not to be re-attached to: the next call under the key asks afresh.
            await self._ids.forget(key, attach)
            log.warning("%s: the reply is unusable: %s", key, verdict)
            raise InvalidReply(str(verdict), usage)
        return StructuredReply(verdict, usage)

    async def forget(self, key: str) -> None:
        """Forget the response recorded under ``key`` (its reply is used up): the next call asks anew."""
        if (record := await self._ids.get(key)) is not None:
            await self._ids.forget(key, record)

    async def abandon(self, key: str) -> None:
        """Cancel the response recorded under ``key`` at the provider, if any, and forget it."""
        record = await self._ids.get(key)
        if record is None:
            return
        await self._api.cancel_quietly(record.response_id)
        await self._ids.forget(key, record)
        log.info("%s: cancelled response %s", key, record.response_id)

    async def _start(
        self,
        key: str,
        prompt: ResponseInputParam,
        text_format: ResponseFormatTextConfigParam,
        max_output_tokens: int | None,
        *,
        cache_key: str | None,
        replacing: ResponseRecord | None,
    ) -> tuple[ResponseRecord, Response | None]:
        """Create a response and record its id; if another process recorded one first, use theirs."""
        response = await self._api.create(key, prompt, text_format, max_output_tokens, cache_key=cache_key)
        record = ResponseRecord(response.id, self._clock(), (replacing.calls if replacing else 0) + 1)
        try:
            stored = await self._record(key, record, replacing)
        except BaseException as exc:
            # Unrecorded, nobody could ever re-attach to it: stop paying for it.
            await self._api.cancel_quietly(response.id)
            if isinstance(exc, RecordConflict):
                raise RetryLater("llm_record_conflict") from exc
            raise
        if stored.response_id != response.id:
            # Another replica holds this request too and recorded its response first: wait for
            # that one and stop paying for ours.
            log.info("%s: another process started response %s; using it", key, stored.response_id)
            await self._api.cancel_quietly(response.id)
            return stored, None
        return stored, response

    async def _record(self, key: str, record: ResponseRecord, replacing: ResponseRecord | None) -> ResponseRecord:
        """Record ``record``, unless another process recorded a response first: then theirs."""
        try:
            return await self._ids.record(key, record, replacing)
        except RecordConflict:
            if (theirs := await self._ids.get(key)) is not None:
                return theirs
        # What we meant to replace was removed meanwhile: record ours afresh.
        return await self._ids.record(key, record, None)

    async def _wait(self, key: str, record: ResponseRecord, created: Response | None, kind: str) -> Response | None:
        """Poll until the response is finished; None if the provider no longer knows it.

        A finished response is taken however old; an unfinished one is waited for until its
        deadline (from its creation, whichever process created it), then abandoned; one still
        ``queued`` ``queued_seconds`` after its creation is abandoned then. A poll that
        fails transiently (429, 5xx, a dropped connection, an unreadable body) is simply made
        again later: the response lives on at the provider, so waiting on costs nothing, while
        giving the message back would cost a redelivery. Polls follow ``PollSchedule``: near
        when calls of the same ``kind`` have been finishing."""
        response: Response | Unfinished | None = created
        delay = 0.0
        if response is None:
            try:
                if (response := await self._api.retrieve(record.response_id)) is None:
                    return None
            except RetryLater as exc:
                delay = self._poll_failed(key, record, exc)
        if (finished := _finished(response)) is not None:
            return finished
        if self._stuck_queued(record, response):
            raise await self._unstick(key, record)
        remaining = record.created_at + self._deadline - self._clock()
        try:
            async with asyncio.timeout(max(0.0, remaining)):
                # ``response`` is None here only while no poll has been read yet.
                while (finished := _finished(response)) is None:
                    # Jittered, so a thousand waiting plans do not poll in lockstep.
                    look = self._schedule.next_look(kind, self._clock() - record.created_at)
                    await asyncio.sleep(
                        max(delay, self._until_watchdog(record, response, look * random.uniform(0.9, 1.1)))
                    )
                    delay = 0.0
                    try:
                        polled = await self._api.retrieve(record.response_id)
                    except RetryLater as exc:
                        delay = self._poll_failed(key, record, exc)
                        continue
                    if polled is None:
                        return None
                    response = polled
                    if self._stuck_queued(record, response):
                        raise _StuckQueued
        except _StuckQueued:
            raise await self._unstick(key, record) from None
        except TimeoutError:
            # Past the deadline the response is considered stuck: stop paying for it, and let
            # the next delivery start afresh (as a timed-out chat call would).
            await self._api.cancel_quietly(record.response_id)
            await self._ids.forget(key, record)
            raise RetryLater("llm_timeout") from None
        return finished

    async def _judge_metered(
        self, key: str, record: ResponseRecord, response: Response, reply_type: type[ReplyT]
    ) -> ReplyT | InvalidReply:
        """``reply_in``, with the finished response metered once as one call (however many polls)."""
        outcome = "ok"
        try:
            verdict = reply_in(response, reply_type)
        except (RetryLater, GiveUp):
            # A failed or cancelled response cannot be recovered: not to be re-attached to.
            await self._ids.forget(key, record)
            outcome = "cancelled" if response.status == "cancelled" else "server_error"
            raise
        else:
            outcome = "invalid_reply" if isinstance(verdict, InvalidReply) else "ok"
            return verdict
        finally:
            if self._meter is not None:
                usage = response.usage
                await self._meter.record(
                    response.model or self.model,
                    outcome,
                    max(0.0, self._clock() - record.created_at),
                    prompt_tokens=usage.input_tokens if usage else 0,
                    completion_tokens=usage.output_tokens if usage else 0,
                    cached_tokens=_cached(response),
                    service_tier=response.service_tier or "default",
                    # Every process that sees this response finished records it under one id.
                    call_id=uuid.uuid5(_RESPONSE_CALLS, response.id),
                )

    def _stuck_queued(self, record: ResponseRecord, response: Response | Unfinished | None) -> bool:
        """Still ``queued`` (not yet ``in_progress``) past ``queued_seconds`` from its creation."""
        return (
            self._queued is not None
            and response is not None
            and response.status == "queued"
            and self._clock() - record.created_at > self._queued
        )

    def _until_watchdog(self, record: ResponseRecord, response: Response | Unfinished | None, look: float) -> float:
        """``look``, or less when a queued response would pass ``queued_seconds`` before it: the
        watchdog looks just after that moment."""
        if self._queued is None or response is None or response.status != "queued":
            return look
        return min(look, max(0.0, record.created_at + self._queued - self._clock()) + _WATCHDOG_MARGIN_SECONDS)

    async def _unstick(self, key: str, record: ResponseRecord) -> RetryLater:
        """Cancel and forget a response stuck in the provider's queue: the next delivery starts a
        new one, which may be picked up where this one was not."""
        log.warning(
            "%s: response %s still queued %.0fs after its creation; cancelled, the next delivery starts a new one",
            key,
            record.response_id,
            self._clock() - record.created_at,
        )
        await self._api.cancel_quietly(record.response_id)
        await self._ids.forget(key, record)
        return RetryLater("llm_stuck_queued")

    def _poll_failed(self, key: str, record: ResponseRecord, exc: RetryLater) -> float:
        """Log a transient poll failure; how long to wait before the next poll."""
        log.warning("%s: polling response %s failed (%s); polling again", key, record.response_id, exc.reason)
        return exc.delay_seconds or 0.0


def _finished(response: Response | Unfinished | None) -> Response | None:
    """``response`` when it is finished (an ``Unfinished`` never is)."""
    return response if isinstance(response, Response) and response.status in TERMINAL else None


def _cached(response: Response) -> int:
    usage = response.usage
    return (usage.input_tokens_details.cached_tokens or 0) if usage and usage.input_tokens_details else 0
