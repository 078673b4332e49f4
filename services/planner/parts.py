"""What the plan strategies made of parts share: each part a checked call, kept once written.

A part (the skeleton, a week, a day of a week...) is written by ``first_usable`` under the key
``<request id>.<part>`` and kept (``FinishedParts``) before anything else happens, so a redelivery
buys only the parts that were not finished; over background responses the key names the response
recorded for it, so a redelivery re-attaches to the parts still being written too. The records of
a part's calls are kept with it and carried on with the plan (``metering``).

``_Patient`` holds a slot of the process's call limit for each call and tries a call refused
before any generation (nothing billed) again in place.
"""

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

import pydantic

from contracts.events import Lane
from contracts.plan import TrainingWeek
from contracts.progress import PlanProgress
from service_runtime.bus import ProgressAnnouncer
from service_runtime.llm import Prompt, StructuredCalls, StructuredReply, first_usable
from service_runtime.llm.metering import carry_calls, collecting_calls
from service_runtime.llm.terms import calling_for
from service_runtime.outcomes import GiveUp, Misconfigured, RetryLater
from services.planner.state import KeptPart

__all__ = [
    "PART_TRIES",
    "FinishedParts",
    "KnownExercises",
    "PartWriter",
    "all_or_first_failure",
    "announce_week",
    "catalogue_note",
    "first_delivery",
]

log = logging.getLogger(__name__)

PartT = TypeVar("PartT", bound=pydantic.BaseModel)
T = TypeVar("T")
# Refusals that come before any generation (a 429, a 5xx, a background response that failed):
# nothing was billed, so a part tries again in place, up to this many times in all. A plan's parts
# share one delivery budget (``max_deliver``); redelivering for each would spend it on faults of
# parts that are not even the same work, and fail plans that were getting written. Three tries is
# the openai SDK's own default (two retries), here only for calls nothing was billed for.
PART_TRIES = 3
_RETRIED_IN_PLACE = frozenset({"llm_rate_limited", "llm_server_error"})


class FinishedParts(Protocol):
    async def get(self, request_id: uuid.UUID, part: str) -> KeptPart | None: ...

    async def put(self, request_id: uuid.UUID, part: str, kept: KeptPart) -> None: ...


class KnownExercises(Protocol):
    """Names the exercise catalogue already describes (``state.CatalogueNames``)."""

    async def names(self) -> list[str]: ...


def catalogue_note(names: list[str]) -> str | None:
    """The hint toward catalogue exercises, for the call where the exercise selection happens."""
    if not names:
        return None
    return (
        "Exercises the app already describes (prefer these exact names where they suit this person;"
        " use others only when none fits): " + "; ".join(names)
    )


@dataclass
class _FirstDelivery:
    request_id: uuid.UUID
    kept: dict[str, KeptPart] = field(default_factory=dict)


# The request whose delivery this is, when it is the first to begin the request, and the parts it
# kept so far (its tasks share the one object).
_FIRST: ContextVar[_FirstDelivery | None] = ContextVar("first_delivery", default=None)


@contextmanager
def first_delivery(request_id: uuid.UUID) -> Iterator[None]:
    """Within: the request's first delivery (``GeneratedPlans.begin``). No earlier one kept a part of
    it, so its parts are looked up among those this one kept, not in ``FinishedParts`` (up to 17
    reads a plan, each a round trip to JetStream); what it keeps is still put there."""
    token = _FIRST.set(_FirstDelivery(request_id))
    try:
        yield
    finally:
        _FIRST.reset(token)


class PartWriter:
    """Checked parts, each kept once written; every call holds a slot of ``max_concurrent_calls``,
    shared by every plan in the process (a plan's parallel calls would otherwise multiply)."""

    def __init__(self, calls: StructuredCalls, parts: FinishedParts, *, max_concurrent_calls: int) -> None:
        self._calls = _Patient(calls, asyncio.Semaphore(max_concurrent_calls))
        self._parts = parts
        self.model = calls.model

    async def write(
        self,
        request_id: uuid.UUID,
        name: str,
        reply_type: type[PartT],
        prompt: Prompt,
        problems_of: Callable[[PartT], list[str]],
        *,
        fresh: bool,
        tries: int,
        invalid_is_transient: bool,
    ) -> StructuredReply[PartT]:
        """A checked part: the one kept from an earlier delivery, or a new one (``fresh``: a new
        one even when one is kept, replacing it)."""
        key = _key(request_id, name)
        kept = await self._kept(request_id, name)
        if fresh:
            await self._calls.forget(key)  # that response wrote the part being replaced
        elif kept is not None:
            carry_calls(kept.calls)  # paid for by an earlier delivery: its records go on with the plan
            return StructuredReply(
                reply_type.model_validate_json(kept.reply), kept.usage.model_copy(update={"calls": 0})
            )
        # The records of this part's calls are kept with it (a crash after this loses none of
        # them), and join the delivery's (``Planning``), which sends them on with the plan.
        with collecting_calls() as calls:
            reply = await first_usable(
                self._calls,
                key,
                prompt,
                reply_type,
                tries=tries,
                problems_of=problems_of,
                quality_reason="plan_quality",
                what=name,
                invalid_is_transient=invalid_is_transient,
            )
        replaced = kept.calls if kept is not None else ()
        part = KeptPart(reply=reply.parsed.model_dump_json(), usage=reply.usage, calls=(*replaced, *calls))
        await self._parts.put(request_id, name, part)
        if (first := _FIRST.get()) is not None and first.request_id == request_id:
            first.kept[name] = part
        return reply

    async def kept(self, request_id: uuid.UUID, name: str) -> bool:
        """Whether the part is written and kept."""
        return await self._kept(request_id, name) is not None

    async def _kept(self, request_id: uuid.UUID, name: str) -> KeptPart | None:
        if (first := _FIRST.get()) is not None and first.request_id == request_id:
            return first.kept.get(name)
        return await self._parts.get(request_id, name)

    async def warmed(self, request_id: uuid.UUID, name: str, seconds: float) -> None:
        """Wait ``seconds`` before writing a part whose prompt shares a prefix with one just sent,
        so the provider has written that prefix into its cache (its prefill done) by the time this
        one asks: calls sent at the same instant all miss it. A part already kept does not wait."""
        if seconds > 0 and not await self.kept(request_id, name):
            await asyncio.sleep(seconds)

    async def abandon(self, request_id: uuid.UUID, names: Sequence[str]) -> None:
        """Stop paying for the parts' calls still running (a cancelled request)."""
        await asyncio.gather(*(self._calls.abandon(_key(request_id, name)) for name in names))


class _Patient:
    """``StructuredCalls`` that holds a slot of the process's call limit for each call, and tries a
    call refused before any generation (nothing billed) again in place, after Retry-After if given."""

    def __init__(self, calls: StructuredCalls, slots: asyncio.Semaphore) -> None:
        self._calls = calls
        self._slots = slots
        self.model = calls.model

    async def call(self, key: str, prompt: Prompt, reply_type: type[PartT]) -> StructuredReply[PartT]:
        for tried in range(1, PART_TRIES + 1):
            try:
                async with self._slots:
                    return await self._calls.call(key, prompt, reply_type)
            except RetryLater as exc:
                if exc.reason not in _RETRIED_IN_PLACE or tried == PART_TRIES:
                    raise
                delay = exc.delay_seconds if exc.delay_seconds is not None else float(tried)
                log.info("%s: %s; trying again in %.1fs (try %d of %d)", key, exc.reason, delay, tried + 1, PART_TRIES)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def forget(self, key: str) -> None:
        await self._calls.forget(key)

    async def abandon(self, key: str) -> None:
        await self._calls.abandon(key)


def _key(request_id: uuid.UUID, part: str) -> str:
    """The key a part's call is made under (and its background response recorded under)."""
    return f"{request_id}.{part}"


@contextmanager
def calls_for(progress: ProgressAnnouncer, request_id: uuid.UUID, user_id: uuid.UUID, lane: Lane) -> Iterator[None]:
    """The request's calls share the provider's budget fairly between users, their lane first
    (``service_runtime.llm.admission``); while they wait the app is told their place in line."""

    async def in_line(position: int, expected_seconds: float) -> None:
        await progress.announce(
            PlanProgress(
                request_id=request_id,
                status="processing",
                stage="generating",
                queue_position=position,
                expected_wait_seconds=round(expected_seconds, 1),
            )
        )

    with calling_for(str(user_id), lane, on_wait=in_line):
        yield


async def announce_week(
    progress: ProgressAnnouncer, request_id: uuid.UUID, week: TrainingWeek, *, done: int, rewrite: frozenset[int]
) -> None:
    """Show a checked week to the app: version 1 in a first round, 2 when a second round wrote it
    again; a week kept from the first round is not news the second time round."""
    if rewrite and week.week not in rewrite:
        return
    await progress.announce(
        PlanProgress(
            request_id=request_id,
            status="processing",
            stage="generating",
            weeks_done=done,
            week=week,
            week_version=2 if week.week in rewrite else 1,
        )
    )


def all_or_first_failure(outcomes: Sequence[T | BaseException]) -> list[T]:
    """The results, or the failure that decides the delivery: the service's own misconfiguration
    first (it halts the consumer), then a permanent one (``GiveUp``), then a transient one with the
    longest wait, then anything else."""
    failures = [outcome for outcome in outcomes if isinstance(outcome, BaseException)]
    if not failures:
        return [outcome for outcome in outcomes if not isinstance(outcome, BaseException)]
    for failure in failures:
        if isinstance(failure, Misconfigured):
            raise failure
    for failure in failures:
        if isinstance(failure, asyncio.CancelledError | GiveUp):
            raise failure
    retries = [failure for failure in failures if isinstance(failure, RetryLater)]
    if retries:
        raise max(retries, key=lambda r: r.delay_seconds or 0.0)
    raise failures[0]
