"""The parallel adapter of ``PlanWriter``: a skeleton first, then all eight weeks at once.

One call writes the program's skeleton (split, exercise selection per block, each week's theme,
which weeks are deloads); then eight calls, concurrently, each write one week against it; then
the plan is assembled and checked as a whole (``quality.py``). Time-to-plan is the skeleton plus
the slowest week instead of the whole plan token by token.

Each finished part is kept (``PartStore``) before the next step, so a redelivery after a crash
buys only what was not finished; with ``BackgroundCalls`` (``PLANNER_LLM_MODE=responses_background``)
every call is a background response recorded per part, so a redelivery re-attaches to the parts
still being written too, and a crash buys nothing twice. A part that fails its checks is regenerated, up to ``attempts``
times; a plan whose weeks do not fit together gets its weeks written once more; what still fails
ends the request with ``plan_quality``, and nothing of it is stored.
"""

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import openai
import pydantic
from openai.types.chat import ChatCompletionMessageParam

from contracts.events import LlmUsage
from contracts.plan import PLAN_WEEKS, PlanSkeleton, TrainingWeek, WorkoutPlan
from contracts.progress import PlanProgress
from service_runtime.bus import ProgressAnnouncer
from service_runtime.delivery import GiveUp, Misconfigured, RetryLater
from service_runtime.llm import StructuredReply, structured_completion
from service_runtime.metering import LlmMeter
from service_runtime.prompts import read_prompt
from services.planner.background import BackgroundCalls
from services.planner.planning import PLAN_PROMPT, PROMPTS, PlanDraft
from services.planner.quality import plan_problems, requested_days, week_off_skeleton, week_problems

__all__ = ["ParallelPlanWriter", "PartStore"]

log = logging.getLogger(__name__)

SKELETON_PROMPT = read_prompt(PROMPTS, "skeleton-v1")
WEEK_PROMPT = read_prompt(PROMPTS, "week-v1")
SKELETON_INSTRUCTIONS = SKELETON_PROMPT.text
WEEK_INSTRUCTIONS = WEEK_PROMPT.text

PartT = TypeVar("PartT", bound=pydantic.BaseModel)
T = TypeVar("T")
PARTS = ("skeleton", *(f"week{n}" for n in range(1, PLAN_WEEKS + 1)))
# Refusals that come before any generation (a 429, a 5xx, a background response that failed):
# nothing was billed, so a part tries again in place, up to this many times in all. Nine parts
# share one delivery budget (``max_deliver``); redelivering for each would spend it on faults of
# parts that are not even the same work, and fail plans that were getting written. Three tries is
# the openai SDK's own default (two retries), here only for calls nothing was billed for.
PART_TRIES = 3
_RETRIED_IN_PLACE = frozenset({"llm_rate_limited", "llm_server_error"})


class KnownExercises(Protocol):
    """Names the exercise catalogue already describes (see ``known_exercises.py``)."""

    async def names(self) -> list[str]: ...


def catalogue_note(names: list[str]) -> str | None:
    """The skeleton call's hint toward catalogue exercises: where the exercise selection happens."""
    if not names:
        return None
    return (
        "Exercises the app already describes (prefer these exact names where they suit this person;"
        " use others only when none fits): " + "; ".join(names)
    )


class PartStore(Protocol):
    async def get(self, request_id: uuid.UUID, part: str) -> bytes | None: ...

    async def put(self, request_id: uuid.UUID, part: str, value: bytes) -> None: ...


class _Kept(pydantic.BaseModel):
    """A finished part and what it cost, as kept between deliveries."""

    reply: str
    usage: LlmUsage


class ParallelPlanWriter:
    prompt_version = f"{SKELETON_PROMPT.version}+{WEEK_PROMPT.version}+{PLAN_PROMPT.version}"

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        parts: PartStore,
        progress: ProgressAnnouncer,
        *,
        model: str,
        deadline_seconds: float,
        attempts: int,
        stream: bool,
        max_concurrent_calls: int,
        meter: LlmMeter | None = None,
        known: KnownExercises | None = None,
        background: BackgroundCalls | None = None,
    ) -> None:
        self._known = known
        self._background = background
        self._client = client
        self._parts = parts
        self._progress = progress
        self._model = model
        self._deadline = deadline_seconds
        self._attempts = attempts
        self._stream = stream
        self._meter = meter
        # Shared by every plan in the process: eight calls per plan would otherwise multiply.
        self._calls = asyncio.Semaphore(max_concurrent_calls)

    async def write(self, request_id: uuid.UUID, instructions: list[str], user_profile: str) -> PlanDraft:
        skeleton, usages = await self._skeleton(request_id, instructions, user_profile)
        weeks_done = 0
        for round_ in range(2):
            fresh = round_ > 0  # the second round rewrites every week: they did not fit together

            async def week(number: int, fresh: bool = fresh) -> tuple[TrainingWeek, LlmUsage]:
                nonlocal weeks_done
                written = await self._week(request_id, number, skeleton, instructions, user_profile, fresh=fresh)
                weeks_done += 1
                await self._progress.announce(
                    PlanProgress(request_id=request_id, status="processing", stage="generating", weeks_done=weeks_done)
                )
                return written

            weeks_done = 0
            # Every week runs to its end even when another fails: what succeeded is kept for the
            # redelivery, and no call is still running when the message goes back to the server
            # (a redelivery racing a live call for the same week would buy that week twice).
            outcomes = await asyncio.gather(*(week(n) for n in range(1, PLAN_WEEKS + 1)), return_exceptions=True)
            written = _all_or_first_failure(outcomes)
            usages += [usage for _, usage in written]
            plan = WorkoutPlan(title=skeleton.title, summary=skeleton.summary, weeks=[w for w, _ in written])
            problems = plan_problems(plan, profile=user_profile, skeleton=skeleton)
            if not problems:
                return PlanDraft(plan=plan, usage=_total(usages, self._model))
            log.warning("request %s: the weeks do not fit together (%s)", request_id, "; ".join(problems))
        raise GiveUp("plan_quality", "; ".join(problems)[:1000])

    async def abandon(self, request_id: uuid.UUID) -> None:
        """Cancel the request's background responses still recorded. (Streamed calls live only in
        their connections, which stopping the write closed.)"""
        if self._background is not None:
            background = self._background
            await asyncio.gather(*(background.abandon(_call_key(request_id, name)) for name in PARTS))

    async def _skeleton(
        self, request_id: uuid.UUID, instructions: list[str], user_profile: str
    ) -> tuple[PlanSkeleton, list[LlmUsage]]:
        note = catalogue_note(await self._known.names()) if self._known is not None else None
        system = [SKELETON_INSTRUCTIONS, *instructions, *([note] if note else [])]
        asked = requested_days(user_profile)

        def problems(skeleton: PlanSkeleton) -> list[str]:
            if asked is not None and skeleton.days_per_week != asked:
                return [f"the skeleton trains {skeleton.days_per_week} days a week; the profile asks for {asked}"]
            days = [len(block.days) for block in skeleton.blocks]
            if any(n != skeleton.days_per_week for n in days):
                return [f"the skeleton's blocks have {days} days, not {skeleton.days_per_week}"]
            return []

        skeleton, usage = await self._part(
            request_id,
            "skeleton",
            PlanSkeleton,
            system=system,
            user_profile=user_profile,
            problems_of=problems,
            fresh=False,
            # All eight weeks hang on it, and it is a ninth of a plan: one more try than a week gets
            # in a delivery (two truncated skeletons in a row failed ~1 plan in 100 at 30 % faults).
            reply_attempts=self._attempts + 1,
        )
        return skeleton, [usage]

    async def _week(
        self,
        request_id: uuid.UUID,
        number: int,
        skeleton: PlanSkeleton,
        instructions: list[str],
        user_profile: str,
        *,
        fresh: bool,
    ) -> tuple[TrainingWeek, LlmUsage]:
        brief = WEEK_INSTRUCTIONS.format(week=number, skeleton=skeleton.model_dump_json())

        def problems(week: TrainingWeek) -> list[str]:
            if week.week != number:
                return [f"asked for week {number}, got week {week.week}"]
            return week_problems(week, days_per_week=skeleton.days_per_week, profile=user_profile) + (
                week_off_skeleton(week, skeleton)
            )

        # A week is a ninth of a plan and eight of them run at once: an invalid reply is worth another
        # delivery (which buys only the weeks still missing) rather than failing the whole request.
        # The skeleton fails within its delivery (after one more try than a week gets): a request
        # that keeps getting invalid replies ends quickly.
        return await self._part(
            request_id,
            f"week{number}",
            TrainingWeek,
            system=[brief, *instructions],
            user_profile=user_profile,
            problems_of=problems,
            fresh=fresh,
            retry_invalid=True,
        )

    async def _part(
        self,
        request_id: uuid.UUID,
        name: str,
        reply_type: type[PartT],
        *,
        system: list[str],
        user_profile: str,
        problems_of: Callable[[PartT], list[str]],
        fresh: bool,
        retry_invalid: bool = False,
        reply_attempts: int | None = None,
    ) -> tuple[PartT, LlmUsage]:
        """A checked part: the one kept from an earlier delivery, or a new one (regenerated while
        its checks fail, ``attempts`` times at most)."""
        kept = None if fresh else await self._parts.get(request_id, name)
        if kept is not None:
            part = _Kept.model_validate_json(kept)
            return reply_type.model_validate_json(part.reply), part.usage.model_copy(update={"calls": 0})
        usages: list[LlmUsage] = []
        problems: list[str] = []
        key = _call_key(request_id, name)
        ask = _Ask(key, reply_type, system, user_profile, retry_invalid, reply_attempts or self._attempts)
        if fresh and self._background is not None:
            await self._background.forget(key)  # that response wrote the week being replaced
        for _ in range(self._attempts):
            reply = await self._call_patiently(ask)
            usages.append(reply.usage)
            problems = problems_of(reply.parsed)
            if not problems:
                usage = _total(usages, self._model)
                await self._parts.put(
                    request_id,
                    name,
                    _Kept(reply=reply.parsed.model_dump_json(), usage=usage).model_dump_json().encode(),
                )
                return reply.parsed, usage
            if self._background is not None:
                await self._background.forget(key)  # not to be re-attached to: write it anew
            log.warning("request %s: %s fails its checks (%s); regenerating", request_id, name, "; ".join(problems))
        raise GiveUp("plan_quality", f"{name}: " + "; ".join(problems)[:1000])

    async def _call_patiently(self, ask: "_Ask[PartT]") -> StructuredReply[PartT]:
        """``_call``, tried again in place (after Retry-After, if given) when refused unbilled."""
        for tried in range(1, PART_TRIES + 1):
            try:
                async with self._calls:
                    return await self._call(ask)
            except RetryLater as exc:
                if exc.reason not in _RETRIED_IN_PLACE or tried == PART_TRIES:
                    raise
                delay = exc.delay_seconds if exc.delay_seconds is not None else float(tried)
                log.info(
                    "%s: %s; trying again in %.1fs (try %d of %d)", ask.key, exc.reason, delay, tried + 1, PART_TRIES
                )
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    async def _call(self, ask: "_Ask[PartT]") -> StructuredReply[PartT]:
        """One call, its invalid replies regenerated ``ask.attempts`` times in all."""
        if self._background is not None:
            return await self._background.complete(
                ask.key,
                ask.system,
                ask.user_profile,
                ask.reply_type,
                invalid_is_transient=ask.retry_invalid,
                attempts=ask.attempts,
            )
        return await structured_completion(
            self._client,
            model=self._model,
            messages=_messages(ask.system, ask.user_profile),
            reply_type=ask.reply_type,
            deadline_seconds=self._deadline,
            attempts=ask.attempts,
            stream=self._stream,
            meter=self._meter,
            invalid_is_transient=ask.retry_invalid,
        )


@dataclass(frozen=True)
class _Ask(Generic[PartT]):
    """One part's call: the key its background response is recorded under, what it asks, whether an
    invalid reply that outlived its ``attempts`` is worth a redelivery."""

    key: str
    reply_type: type[PartT]
    system: list[str]
    user_profile: str
    retry_invalid: bool
    attempts: int


def _call_key(request_id: uuid.UUID, part: str) -> str:
    """Where a part's background response id is recorded."""
    return f"{request_id}.{part}"


def _all_or_first_failure(outcomes: Sequence[T | BaseException]) -> list[T]:
    """The results, or the failure that decides the delivery: the service's own misconfiguration
    first (it halts the consumer), then a permanent one (``GiveUp``),
    then a transient one with the longest wait, then anything else."""
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


def _messages(system: Sequence[str], user_profile: str) -> list[ChatCompletionMessageParam]:
    messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": text} for text in system]
    messages.append({"role": "user", "content": user_profile})
    return messages


def _total(usages: Sequence[LlmUsage], model: str) -> LlmUsage:
    return LlmUsage(
        model=usages[0].model if usages else model,
        prompt_tokens=sum(u.prompt_tokens for u in usages),
        completion_tokens=sum(u.completion_tokens for u in usages),
        calls=sum(u.calls for u in usages),
    )
