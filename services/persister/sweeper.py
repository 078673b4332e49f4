"""The sweeper: Postgres is the record of truth, so it finds the requests that stopped moving.

A JetStream ack is not an fsync, a publish can be lost between a commit and a crash, and a
message whose attempts ran out while the failure could not be recorded is never redelivered.
Whatever the cause, a request with no progress for ``stall_seconds`` is re-driven from what the
database says it has (the plan or week request again, or the profiles still missing), and a request
still unfinished after ``deadline_seconds`` ends ``failed`` with reason ``timeout``. A request
waiting for the user's review of its skeleton is not stalled: it is left alone until its wait runs
out, then goes on by itself; and the deadline grows by the wait of each skeleton shown.

Rows are claimed with ``FOR UPDATE SKIP LOCKED``: replicas sweep side by side, and a request
being completed right now is skipped, not waited for. Re-drives publish inside the claiming
transaction, so a failed publish leaves the request as it was for the next sweep.
"""

import logging
from dataclasses import dataclass
from typing import Any

import asyncpg

from contracts.events import ExerciseProfileNeeded, PlanPersisted, PlanRequested, ReviewDecision, WeekRequested
from service_runtime.bus import EventPublisher
from service_runtime.metrics import PLANS_FAILED
from services.persister.completion import complete_if_ready
from services.persister.plans import Completion, Waiting, count_completion
from services.persister.postgres import drop_unfinished_plan
from services.persister.week_versions import week_if_ready

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SweepPolicy:
    stall_seconds: float
    deadline_seconds: float
    batch: int = 100


@dataclass(frozen=True)
class SweepResult:
    timed_out: int = 0
    redriven: int = 0
    completed: int = 0


class Sweeper:
    def __init__(self, pool: asyncpg.Pool, publisher: EventPublisher, policy: SweepPolicy) -> None:
        self._pool = pool
        self._publisher = publisher
        self._policy = policy

    async def sweep_once(self) -> SweepResult:
        timed_out = await self._expire_overdue()
        redriven = 0
        completions: list[PlanPersisted] = []
        async with self._pool.acquire() as conn, conn.transaction():
            stalled: list[Any] = await conn.fetch(
                "SELECT r.id, r.user_id, r.user_profile, r.system_prompt, r.redrives, p.id AS plan_id,"
                " r.week_request, r.stage, r.review_seconds, r.review_round, r.review_action, r.review_adjustments"
                " FROM workout_plan_requests r LEFT JOIN workout_plans p ON p.request_id = r.id"
                " WHERE r.status = 'processing' AND CASE WHEN r.stage = 'waiting'"
                "   THEN r.review_until <= clock_timestamp()"  # the user's time ran out: go on without them
                "   ELSE r.updated_at < clock_timestamp() - make_interval(secs => $1) END"
                " ORDER BY r.updated_at LIMIT $2 FOR UPDATE OF r SKIP LOCKED",
                self._policy.stall_seconds,
                self._policy.batch,
            )
            for request in stalled:
                if request["stage"] == "waiting":
                    await self._go_on_unreviewed(conn, request)
                    redriven += 1
                    continue
                done: Completion | Waiting | None = None
                if request["plan_id"] is not None:
                    done = await complete_if_ready(conn, request["id"], request["user_id"], request["plan_id"])
                elif request["week_request"] is not None:
                    done = await week_if_ready(conn, request["id"], request["user_id"])
                if isinstance(done, Completion):
                    count_completion(done)
                    # Every profile arrived through other requests; this one's own events were lost.
                    completions.append(
                        PlanPersisted(request_id=done.request_id, user_id=done.user_id, plan_id=done.plan_id)
                    )
                    continue
                await self._redrive(conn, request, done)
                redriven += 1
        for event in completions:  # after the commit: announce only what is durable
            await self._publisher.publish(event)
        if timed_out:
            PLANS_FAILED.labels("persister", "timeout").inc(timed_out)
        if timed_out or redriven or completions:
            log.warning("sweep: %d timed out, %d re-driven, %d completed", timed_out, redriven, len(completions))
        return SweepResult(timed_out, redriven, len(completions))

    async def _expire_overdue(self) -> int:
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "UPDATE workout_plan_requests SET status = 'failed', error = $3,"
                " completed_at = clock_timestamp(), updated_at = clock_timestamp()"
                " WHERE id IN (SELECT id FROM workout_plan_requests WHERE status = 'processing'"
                # A wait for the user is not the service's time: each skeleton shown extends the deadline.
                "   AND created_at"
                "     < clock_timestamp() - make_interval(secs => $1::float8 + review_seconds * (review_round + 1))"
                "   AND NOT (stage = 'waiting' AND review_until > clock_timestamp())"
                "   ORDER BY created_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
                " RETURNING id",
                self._policy.deadline_seconds,
                self._policy.batch,
                f"timeout: no result within {self._policy.deadline_seconds:.0f} s",
            )
            for row in rows:
                await drop_unfinished_plan(conn, row["id"])
        return len(rows)

    async def _go_on_unreviewed(self, conn: Any, request: Any) -> None:
        """The skeleton was shown and the user let the time pass: write the weeks against it."""
        await conn.execute(
            "UPDATE workout_plan_requests SET stage = 'queued', review_action = 'timeout', review_until = NULL,"
            " updated_at = clock_timestamp() WHERE id = $1",
            request["id"],
        )
        await self._publisher.publish(_plan_requested(request, action="timeout"))

    async def _redrive(self, conn: Any, request: Any, waiting: Waiting | None) -> None:
        attempt = request["redrives"] + 1
        if waiting is not None:  # a plan, or a week written again, waiting for profiles
            for exercise in waiting.missing:
                await self._publisher.publish(
                    ExerciseProfileNeeded(request_id=request["id"], exercise=exercise, redrive=attempt)
                )
        elif request["week_request"] is not None:  # a week to write again, not written yet
            await self._publisher.publish(WeekRequested.model_validate({**request["week_request"], "redrive": attempt}))
        else:
            await self._publisher.publish(_plan_requested(request, action=request["review_action"], redrive=attempt))
        await conn.execute(
            "UPDATE workout_plan_requests SET redrives = $2, updated_at = clock_timestamp() WHERE id = $1",
            request["id"],
            attempt,
        )


def _plan_requested(request: Any, *, action: str | None, redrive: int = 0) -> PlanRequested:
    """The request again, as the row has it: with the user's last decision on its skeleton, if any."""
    review = None
    if action is not None:
        review = ReviewDecision(
            action=action, round=request["review_round"], adjustments=tuple(request["review_adjustments"])
        )
    return PlanRequested(
        request_id=request["id"],
        user_id=request["user_id"],
        user_profile=request["user_profile"],
        system_prompt=request["system_prompt"],
        review_seconds=request["review_seconds"],
        review=review,
        redrive=redrive,
    )
