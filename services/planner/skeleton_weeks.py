"""The skeleton-then-weeks strategy: a skeleton first, then all eight weeks at once.

One call writes the program's skeleton (split, exercise selection per block, each week's theme,
which weeks are deloads); then eight calls, concurrently, each write one week against it; then the
plan is assembled and checked once, as a whole, with its skeleton (``quality.plan_problems``).
Time-to-plan is the skeleton plus the slowest week instead of the whole plan token by token.

Each finished part is kept (``FinishedParts``) before the next step, so a redelivery buys only
what was not finished; over background responses every part is a response recorded under
``<request id>.<part>``, so a redelivery re-attaches to the parts still being written too.

Paid calls, worst case (``tries`` = ``PLANNER_REPLY_ATTEMPTS``, the ladder of ``first_usable``):
the skeleton ``tries + 1`` (all eight weeks hang on it), each week ``tries`` per round, and a
second round of all eight weeks when the assembled plan fails its checks: per delivery at most
``(tries + 1) + 2 * 8 * tries``. A week whose replies stay unusable is worth a redelivery (which
buys only the weeks still missing); everything else that stays wrong ends the request with
``plan_quality`` or ``invalid_llm_reply``, and nothing of it is stored.
"""

import asyncio
import logging
import uuid
from collections.abc import Callable, Sequence
from typing import Protocol, TypeVar

import pydantic

from contracts.plan import PLAN_WEEKS, PlanSkeleton, TrainingWeek, WorkoutPlan
from contracts.progress import PlanProgress
from service_runtime.bus import ProgressAnnouncer
from service_runtime.llm import Prompt, StructuredCalls, StructuredReply, first_usable
from service_runtime.llm.metering import carry_calls, collecting_calls
from service_runtime.llm.port import total_usage
from service_runtime.outcomes import GiveUp, Misconfigured, RetryLater
from service_runtime.prompts import read_prompt
from services.planner.planning import PLAN_PROMPT, PROMPTS, CheckedPlan, PlanPrompt
from services.planner.quality import plan_problems, requested_days, week_off_skeleton, week_problems
from services.planner.state import KeptPart

__all__ = ["PARTS", "SkeletonThenWeeks"]

log = logging.getLogger(__name__)

SKELETON_PROMPT = read_prompt(PROMPTS, "skeleton-v1")
WEEK_PROMPT = read_prompt(PROMPTS, "week-v1")

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


class FinishedParts(Protocol):
    async def get(self, request_id: uuid.UUID, part: str) -> KeptPart | None: ...

    async def put(self, request_id: uuid.UUID, part: str, kept: KeptPart) -> None: ...


class KnownExercises(Protocol):
    """Names the exercise catalogue already describes (``state.CatalogueNames``)."""

    async def names(self) -> list[str]: ...


def catalogue_note(names: list[str]) -> str | None:
    """The skeleton call's hint toward catalogue exercises: where the exercise selection happens."""
    if not names:
        return None
    return (
        "Exercises the app already describes (prefer these exact names where they suit this person;"
        " use others only when none fits): " + "; ".join(names)
    )


class SkeletonThenWeeks:
    prompt_version = f"{SKELETON_PROMPT.version}+{WEEK_PROMPT.version}+{PLAN_PROMPT.version}"

    def __init__(
        self,
        calls: StructuredCalls,
        parts: FinishedParts,
        progress: ProgressAnnouncer,
        *,
        tries: int,
        max_concurrent_calls: int,
        known: KnownExercises | None = None,
    ) -> None:
        # Shared by every plan in the process: eight calls per plan would otherwise multiply.
        self._calls = _Patient(calls, asyncio.Semaphore(max_concurrent_calls))
        self._parts = parts
        self._progress = progress
        self._tries = tries
        self._known = known

    async def write(self, request_id: uuid.UUID, prompt: PlanPrompt) -> CheckedPlan:
        skeleton = await self._skeleton(request_id, prompt)
        paid = [skeleton.usage]  # every round's weeks were paid for, kept or not
        problems: list[str] = []
        for round_ in range(2):
            # The second round rewrites every week: the first ones did not fit together.
            weeks = await self._weeks(request_id, prompt, skeleton.parsed, fresh=round_ > 0)
            paid += [week.usage for week in weeks]
            plan = WorkoutPlan(
                title=skeleton.parsed.title, summary=skeleton.parsed.summary, weeks=[w.parsed for w in weeks]
            )
            problems = plan_problems(plan, profile=prompt.user, skeleton=skeleton.parsed)
            if not problems:
                return CheckedPlan(plan, total_usage(paid, self._calls.model))
            log.warning("request %s: the weeks do not fit together (%s)", request_id, "; ".join(problems))
        raise GiveUp("plan_quality", "; ".join(problems)[:1000])

    async def abandon(self, request_id: uuid.UUID) -> None:
        await asyncio.gather(*(self._calls.abandon(_key(request_id, name)) for name in PARTS))

    async def _skeleton(self, request_id: uuid.UUID, prompt: PlanPrompt) -> StructuredReply[PlanSkeleton]:
        note = catalogue_note(await self._known.names()) if self._known is not None else None
        asked = requested_days(prompt.user)

        def problems(skeleton: PlanSkeleton) -> list[str]:
            if asked is not None and skeleton.days_per_week != asked:
                return [f"the skeleton trains {skeleton.days_per_week} days a week; the profile asks for {asked}"]
            days = [len(block.days) for block in skeleton.blocks]
            if any(n != skeleton.days_per_week for n in days):
                return [f"the skeleton's blocks have {days} days, not {skeleton.days_per_week}"]
            return []

        return await self._part(
            request_id,
            "skeleton",
            PlanSkeleton,
            prompt.with_instructions(SKELETON_PROMPT.text, after=(note,) if note else ()),
            problems,
            fresh=False,
            # A ninth of a plan that all eight weeks hang on: one more try than a week gets (two
            # truncated skeletons in a row failed ~1 plan in 100 at 30 % faults). It fails within
            # its delivery, so a request that keeps getting unusable replies ends quickly.
            tries=self._tries + 1,
            invalid_is_transient=False,
        )

    async def _weeks(
        self, request_id: uuid.UUID, prompt: PlanPrompt, skeleton: PlanSkeleton, *, fresh: bool
    ) -> list[StructuredReply[TrainingWeek]]:
        done = 0

        async def week(number: int) -> StructuredReply[TrainingWeek]:
            nonlocal done
            brief = WEEK_PROMPT.text.format(week=number, skeleton=skeleton.model_dump_json())

            def problems(week: TrainingWeek) -> list[str]:
                if week.week != number:
                    return [f"asked for week {number}, got week {week.week}"]
                return week_problems(
                    week, days_per_week=skeleton.days_per_week, profile=prompt.user
                ) + week_off_skeleton(week, skeleton)

            written = await self._part(
                request_id,
                f"week{number}",
                TrainingWeek,
                prompt.with_instructions(brief),
                problems,
                fresh=fresh,
                tries=self._tries,
                # A ninth of a plan, eight at once: unusable replies are worth another delivery
                # (which buys only the weeks still missing) rather than failing the request.
                invalid_is_transient=True,
            )
            done += 1
            await self._progress.announce(
                PlanProgress(request_id=request_id, status="processing", stage="generating", weeks_done=done)
            )
            return written

        # Every week runs to its end even when another fails: what succeeded is kept for the
        # redelivery, and no call is still running when the message goes back to the server (a
        # redelivery racing a live call for the same week would buy that week twice).
        outcomes = await asyncio.gather(*(week(n) for n in range(1, PLAN_WEEKS + 1)), return_exceptions=True)
        return _all_or_first_failure(outcomes)

    async def _part(
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
        """A checked part: the one kept from an earlier delivery, or a new one."""
        key = _key(request_id, name)
        kept = await self._parts.get(request_id, name)
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
        await self._parts.put(
            request_id,
            name,
            KeptPart(reply=reply.parsed.model_dump_json(), usage=reply.usage, calls=(*replaced, *calls)),
        )
        return reply


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


def _all_or_first_failure(outcomes: Sequence[T | BaseException]) -> list[T]:
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
