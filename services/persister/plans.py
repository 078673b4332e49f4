"""Persisting plans: store what arrives, in any order, and complete a request exactly once.

A plan needs every exercise it uses to have a profile. Storing a plan tells which of its exercises
the catalogue still lacks, and only those are asked of the profiler (``exercise.profile.needed``):
over a warm catalogue a plan completes the moment it is stored, with no profile message at all.
The ``exercise.profiled`` events then arrive in any order, on any replica, possibly at once; the
store serialises each request's completeness check (see ``PostgresPlanStore``), so whichever
event arrives last completes the plan, and the request's status turns ``completed`` in that same
transaction, last.
"""

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Protocol
from uuid import UUID

from contracts.events import (
    ExerciseProfiled,
    ExerciseProfileNeeded,
    ExerciseRef,
    PlanAwaitingReview,
    PlanCancelled,
    PlanFailed,
    PlanPersisted,
    TrustedPlanGenerated,
    WeekGenerated,
)
from contracts.progress import PlanProgress
from service_runtime.bus import EventPublisher, ProgressAnnouncer
from service_runtime.metrics import PLAN_SECONDS, PLANS_COMPLETED, PLANS_FAILED, STAGE_SECONDS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Completion:
    """A request whose plan is complete and whose status is ``completed``."""

    request_id: UUID
    user_id: UUID
    plan_id: UUID
    # Set only by the write that completed it (not by a repeat): seconds since the request was
    # accepted, and since its plan was stored.
    total_seconds: float | None = None
    profiling_seconds: float | None = None


def count_completion(completion: Completion) -> None:
    """Export a completion once: a repeat delivery reports the completion again, without durations."""
    if completion.total_seconds is None:
        return
    PLANS_COMPLETED.inc()
    PLAN_SECONDS.observe(completion.total_seconds)
    if completion.profiling_seconds is not None:
        STAGE_SECONDS.labels("profiling").observe(completion.profiling_seconds)


@dataclass(frozen=True)
class Waiting:
    """A stored plan still waiting for some of its exercises' profiles (``missing``: which, when
    the store was asked; empty when it only counted them)."""

    request_id: UUID
    exercises_total: int
    exercises_profiled: int
    missing: tuple[ExerciseRef, ...] = field(default=(), compare=False)


class PlanStore(Protocol):
    """Port to the record of truth. Every method is idempotent under redelivery.

    ``store_plan`` and ``store_profile`` return where the request stands after the write, or
    None when the write could not move it (the request ended, or its plan is not stored yet)."""

    async def store_plan(self, event: TrustedPlanGenerated) -> Completion | Waiting | None:
        """Store the plan (once); a ``Waiting`` names every exercise still without a profile."""
        ...

    async def store_profile(self, event: ExerciseProfiled) -> Completion | Waiting | None: ...

    async def store_week(self, event: WeekGenerated) -> Completion | Waiting | None:
        """Store a week written again (once) and swap it into its plan once its exercises have
        profiles; a ``Waiting`` names every exercise still without one."""
        ...

    async def await_review(self, event: PlanAwaitingReview) -> bool:
        """Mark the request ``waiting`` for the user's review of its skeleton until ``review_seconds``
        from now; False when that changed nothing (decided already, ended, or a repeat)."""
        ...

    async def mark_failed(self, event: PlanFailed) -> str | None:
        """Mark the request failed; return the stored reason, or None if it had already ended."""
        ...

    async def drop_cancelled_plan(self, event: PlanCancelled) -> None:
        """Remove the unfinished plan (and its entries) of a request that ended ``cancelled``."""
        ...


# How many completions this process remembers having announced (a few MB at most).
ANNOUNCED_KEPT = 100_000


class Persisting:
    """The persister's use cases."""

    def __init__(self, store: PlanStore, publisher: EventPublisher, progress: ProgressAnnouncer) -> None:
        self._store = store
        self._publisher = publisher
        self._progress = progress
        # Requests whose completion this process has announced. Once a plan is complete, each of
        # its late ``exercise.profiled`` events reports the completion again; re-announcing those
        # is two publishes per event for JetStream to drop as duplicates. A process that did not
        # announce it (another replica, or this one after a crash between commit and publish)
        # still does.
        self._announced: OrderedDict[UUID, None] = OrderedDict()

    async def plan_generated(self, event: TrustedPlanGenerated) -> None:
        outcome = await self._store.store_plan(event)
        if isinstance(outcome, Waiting):
            await self._ask_for(event.request_id, outcome.missing)
        await self._announce(outcome)

    async def _ask_for(self, request_id: UUID, missing: tuple[ExerciseRef, ...]) -> None:
        # After the commit, and again on a redelivery (Nats-Msg-Id drops what already went out):
        # the message is acked only once every profile it waits for has been asked for.
        await asyncio.gather(
            *(
                self._publisher.publish(ExerciseProfileNeeded(request_id=request_id, exercise=exercise))
                for exercise in missing
            )
        )

    async def week_generated(self, event: WeekGenerated) -> None:
        outcome = await self._store.store_week(event)
        if isinstance(outcome, Waiting):
            await self._ask_for(event.request_id, outcome.missing)
        await self._announce(outcome)

    async def plan_awaiting_review(self, event: PlanAwaitingReview) -> None:
        # The planner announced the wait to the app already; this makes it the record (the sweeper
        # then leaves the request alone until the wait runs out, and goes on with it then).
        if await self._store.await_review(event):
            log.info("request %s waits for the user's review of its skeleton", event.request_id)

    async def exercise_profiled(self, event: ExerciseProfiled) -> None:
        await self._announce(await self._store.store_profile(event))

    async def plan_failed(self, event: PlanFailed) -> None:
        reason = await self._store.mark_failed(event)
        if reason is not None:
            PLANS_FAILED.labels(event.stage, event.reason).inc()
            await self._progress.announce(
                PlanProgress(request_id=event.request_id, status="failed", stage="failed", error=reason)
            )

    async def plan_cancelled(self, event: PlanCancelled) -> None:
        # The gateway set ``cancelled`` before announcing it, under the request's lock, so a plan
        # stored before then is removed here, by the one writer of plan data, and a later
        # ``plan.generated`` stores nothing (``store_plan`` drops work of a request that ended).
        await self._store.drop_cancelled_plan(event)

    async def _announce(self, outcome: Completion | Waiting | None) -> None:
        if isinstance(outcome, Waiting):
            await self._progress.announce(
                PlanProgress(
                    request_id=outcome.request_id,
                    status="processing",
                    stage="profiling",
                    exercises_total=outcome.exercises_total,
                    exercises_profiled=outcome.exercises_profiled,
                )
            )
        elif isinstance(outcome, Completion):
            if outcome.total_seconds is None and outcome.request_id in self._announced:
                return
            count_completion(outcome)
            # Also on a repeat delivery of an already completed request: if the first attempt
            # committed but crashed before publishing, this is the publish that was missing.
            # Nats-Msg-Id drops the duplicate otherwise.
            await self._publisher.publish(
                PlanPersisted(request_id=outcome.request_id, user_id=outcome.user_id, plan_id=outcome.plan_id)
            )
            await self._progress.announce(
                PlanProgress(
                    request_id=outcome.request_id, status="completed", stage="completed", plan_id=outcome.plan_id
                )
            )
            self._announced[outcome.request_id] = None
            if len(self._announced) > ANNOUNCED_KEPT:
                self._announced.popitem(last=False)
