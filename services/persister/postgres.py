"""The Postgres adapter of ``PlanStore``.

Lock order, the same in every transaction: the request rows first (``FOR UPDATE``, in id order
when a transaction takes several), then exercise rows (inserted in sorted key order; the ones a
plan's entries name read ``FOR KEY SHARE``, which conflicts only with deleting them or changing
their key, something no persister transaction does), then the plans. Locking the request row, which
exists before any event about it, serialises everything that can complete one request; the
completeness count runs after that lock is held, so under READ COMMITTED it sees whatever the
previous holder committed. Without it, a plan and its last profile committing at the same
time could each conclude the other was still missing and leave the plan waiting forever.

Plans are written in groups (``service_runtime.groups``): the plans that arrive while one group's
transaction runs share the next, so a backlog costs one lock statement, one COPY and one commit
per group rather than per plan. Each plan still gets its own outcome; one refused for its content
(``GiveUp``) is checked before the transaction and fails alone.
"""

import logging
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

from contracts.events import (
    ExerciseProfiled,
    LlmUsage,
    PlanAwaitingReview,
    PlanCancelled,
    PlanFailed,
    TrustedPlanGenerated,
    WeekGenerated,
)
from service_runtime.groups import Grouped
from service_runtime.outcomes import GiveUp
from service_runtime.pools import nothing_to_reset
from services.persister.completion import complete, complete_ready
from services.persister.ledger import insert_calls
from services.persister.locks import lock_request, lock_requests
from services.persister.plan_rows import check_consistent, insert_plans, may_skip_row_checks
from services.persister.plans import Completion, Waiting
from services.persister.week_versions import drop_pending_week, store_week, week_if_ready

log = logging.getLogger(__name__)

Connection = asyncpg.Connection | PoolConnectionProxy


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec(
        "jsonb", encoder=lambda value: orjson.dumps(value).decode(), decoder=orjson.loads, schema="pg_catalog"
    )


# After the request's lock: store the profile in the catalogue (the first one written stays) and,
# in the same round trip, find the request's plan and count its exercises still without a
# profile. The count reads the statement's snapshot, which cannot see this statement's own
# write, so this exercise is left out of ``missing``: once the statement ends it has a profile,
# either ours or the one already stored.
_STORE_PROFILE = """
WITH written AS (
    INSERT INTO exercises (key, name, profile, profiled_at) VALUES ($1, $2, $3, clock_timestamp())
    ON CONFLICT (key) DO UPDATE SET profile = excluded.profile, profiled_at = excluded.profiled_at
    WHERE exercises.profile IS NULL
    RETURNING key
), plan AS (
    SELECT id FROM workout_plans WHERE request_id = $4
)
SELECT (SELECT id FROM plan) AS plan_id,
       EXISTS (SELECT FROM written) AS written,
       count(x.key) AS total,
       count(x.key) FILTER (WHERE x.profile IS NULL AND x.key <> $1) AS missing
FROM exercises x
WHERE x.key IN (SELECT exercise_key FROM workout_entries WHERE workout_plan_id = (SELECT id FROM plan))
"""


# A request whose skeleton the user is to see: waiting from now, unless that round was decided on
# already (a redelivery after the decision) or the request ended meanwhile.
_AWAIT_REVIEW = """
UPDATE workout_plan_requests
SET stage = 'waiting', review_until = clock_timestamp() + make_interval(secs => $3), review_outline = $4,
    updated_at = clock_timestamp()
WHERE id = $1 AND status = 'processing' AND review_round = $2 AND stage <> 'waiting'
  AND (review_action IS NULL OR review_action = 'adjust')
RETURNING id
"""


# Whether a profile can change anything for its request: see ``store_profile``.
_SEEN = "SELECT status, user_id, plan_id FROM workout_plan_requests WHERE id = $1"

# A profile for no request (the profiler's catalogue pre-fill): the catalogue only, first one stays.
_STORE_CATALOGUE_PROFILE = """
INSERT INTO exercises (key, name, profile, profiled_at) VALUES ($1, $2, $3, clock_timestamp())
ON CONFLICT (key) DO UPDATE SET profile = excluded.profile, profiled_at = excluded.profiled_at
WHERE exercises.profile IS NULL
"""


async def create_pool(dsn: str, min_size: int, max_size: int) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, reset=nothing_to_reset
    )
    assert pool is not None
    return pool


class PostgresPlanStore:
    def __init__(
        self, pool: asyncpg.Pool, *, plan_writers: int = 2, max_plans_per_write: int = 64, linger_seconds: float = 0.0
    ) -> None:
        self._pool = pool
        self._plans: Grouped[TrustedPlanGenerated, Completion | Waiting | None] = Grouped(
            self._store_plans,
            name="plans",
            max_group=max_plans_per_write,
            writers=plan_writers,
            linger_seconds=linger_seconds,
        )
        self._skip_row_checks: bool | None = None  # whether the role may (``may_skip_row_checks``): asked once

    async def store_plan(self, event: TrustedPlanGenerated) -> Completion | Waiting | None:
        return await self._plans.submit(event)

    @asynccontextmanager
    async def _plan_transaction(self) -> AsyncIterator[Connection]:
        """A plan group's connection, in its transaction; the first one asks whether the role may
        skip the entries' row checks (before the transaction: the question needs one of its own)."""
        async with self._pool.acquire() as conn:
            if self._skip_row_checks is None:
                self._skip_row_checks = await may_skip_row_checks(conn)
                log.info("entries' row checks skipped where redundant: %s", self._skip_row_checks)
            async with conn.transaction():
                yield conn

    async def _store_plans(self, events: list[TrustedPlanGenerated]) -> list[Completion | Waiting | Exception | None]:
        """One transaction for a group of plans; each plan's outcome, in order."""
        outcomes: dict[uuid.UUID, Completion | Waiting | Exception | None] = {}
        first: dict[uuid.UUID, TrustedPlanGenerated] = {}  # a plan delivered twice in one group is stored once
        for event in events:
            try:
                check_consistent(event)
            except GiveUp as exc:
                outcomes[event.request_id] = exc
            else:
                first.setdefault(event.request_id, event)
        async with self._plan_transaction() as conn:
            requests = await lock_requests(conn, {event.request_id for event in events})
            # The calls that wrote each plan, paid whatever becomes of the plan (dropped, refused).
            await insert_calls(conn, [call for event in events if event.request_id in requests for call in event.calls])
            to_store: list[TrustedPlanGenerated] = []
            for request_id, event in first.items():
                request = requests.get(request_id)
                if request is None:
                    outcomes[request_id] = GiveUp("unknown_request", f"no request {request_id}")
                elif request["status"] == "completed":
                    outcomes[request_id] = Completion(request_id, request["user_id"], request["plan_id"])
                elif request["status"] != "processing":
                    log.info("request %s is %s; dropping its plan", request_id, request["status"])
                    outcomes[request_id] = None
                else:
                    to_store.append(event)
            plans = await stored_plans(conn, [event.request_id for event in to_store])
            new = [event for event in to_store if event.request_id not in plans]
            profiled: set[uuid.UUID] = set()  # new plans whose exercises all had profiles: ready as written
            if new:
                stored = await insert_plans(conn, new, skip_row_checks=self._skip_row_checks is True)
                plans.update(zip((event.request_id for event in new), (plan.id for plan in stored), strict=True))
                profiled.update(plan.id for plan in stored if plan.profiled)
            # A new plan's usage goes in with its completion, or else on its own with the stage it is at.
            usage = {event.request_id: event.usage for event in new}
            outcomes.update(
                await complete_ready(
                    conn,
                    [
                        (event.request_id, requests[event.request_id]["user_id"], plans[event.request_id])
                        for event in to_store
                    ],
                    profiled,
                    usage,
                )
            )
            if waiting := [(rid, used) for rid, used in usage.items() if isinstance(outcomes[rid], Waiting)]:
                await _add_usage(conn, waiting, stage="profiling")
        return [outcomes[event.request_id] for event in events]

    async def store_profile(self, event: ExerciseProfiled) -> Completion | Waiting | None:
        # A profile for a request already completed changes nothing, and one read says so without a
        # lock or a transaction: ``completed`` is final (and means every exercise of the plan, this
        # one included, has its profile). Anything else takes the request's lock: a plan whose
        # transaction counted this exercise missing before the profile committed may still be
        # committing, unseen by a read without the lock (a plan left waiting for good otherwise).
        seen = await self._pool.fetchrow(_SEEN, event.request_id)
        if seen is None:
            # No request behind it: a catalogue pre-fill's profile (services/profiler/prefill.py),
            # for the catalogue alone; no plan can be waiting for it under this id.
            profile = event.profile.model_dump(mode="json")
            await self._pool.execute(_STORE_CATALOGUE_PROFILE, event.exercise.key, event.exercise.name, profile)
            return None
        if seen["status"] == "completed":
            return Completion(event.request_id, seen["user_id"], seen["plan_id"])
        async with self._pool.acquire() as conn, conn.transaction():
            request = await lock_request(conn, event.request_id)
            if request["status"] == "completed":
                return Completion(event.request_id, request["user_id"], request["plan_id"])
            # The catalogue keeps the first profile written; later ones for the same key are no-ops.
            stored = await conn.fetchrow(
                _STORE_PROFILE,
                event.exercise.key,
                event.exercise.name,
                event.profile.model_dump(mode="json"),
                event.request_id,
            )
            assert stored is not None  # an aggregate always returns a row
            if request["status"] != "processing":
                return None
            if event.usage is not None:
                await _add_usage(conn, [(event.request_id, event.usage)])
            if stored["plan_id"] is None:
                # A week written again (its plan belongs to another request), or a plan not stored
                # yet: storing it will run the check.
                return await week_if_ready(conn, event.request_id, request["user_id"])
            if stored["missing"]:
                if not stored["written"]:
                    return None  # the exercise already had its profile: no progress to report
                return Waiting(event.request_id, stored["total"], stored["total"] - stored["missing"])
            return (await complete(conn, [(event.request_id, request["user_id"], stored["plan_id"])]))[0]

    async def store_week(self, event: WeekGenerated) -> Completion | Waiting | None:
        async with self._pool.acquire() as conn, conn.transaction():
            request = await lock_request(conn, event.request_id)
            # The calls that wrote the week, paid whatever becomes of it.
            await insert_calls(conn, event.calls)
            if request["status"] == "completed":
                return Completion(event.request_id, request["user_id"], request["plan_id"])
            if request["status"] != "processing":
                log.info("request %s is %s; dropping its week", event.request_id, request["status"])
                return None
            if await store_week(conn, event, request["user_id"]):
                await _add_usage(conn, [(event.request_id, event.usage)], stage="profiling")
            return await week_if_ready(conn, event.request_id, request["user_id"])

    async def await_review(self, event: PlanAwaitingReview) -> bool:
        waiting = await self._pool.fetchval(
            _AWAIT_REVIEW,
            event.request_id,
            event.round,
            float(event.review_seconds),
            event.outline.model_dump(mode="json"),
        )
        return waiting is not None

    async def mark_failed(self, event: PlanFailed) -> str | None:
        async with self._pool.acquire() as conn, conn.transaction():
            request = await lock_request(conn, event.request_id)
            if request["status"] != "processing":
                return None  # already terminal: a late failure never overrides a result
            reason = f"{event.reason}: {event.detail}" if event.detail else event.reason
            await drop_unfinished_plan(conn, event.request_id)
            await conn.execute(
                "UPDATE workout_plan_requests SET status = 'failed', stage = $2, error = $3,"
                " completed_at = clock_timestamp(), updated_at = clock_timestamp() WHERE id = $1",
                event.request_id,
                event.stage,
                reason[:2000],
            )
        return reason[:2000]

    async def drop_cancelled_plan(self, event: PlanCancelled) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            request = await lock_request(conn, event.request_id)
            if request["status"] == "cancelled":
                await drop_unfinished_plan(conn, event.request_id)


async def drop_unfinished_plan(conn: Connection, request_id: uuid.UUID) -> None:
    """A failed or cancelled request keeps no half-assembled plan (its entries go with it), nor a
    week written again that was waiting to be swapped in."""
    await conn.execute("DELETE FROM workout_plans WHERE request_id = $1 AND assembly = 'assembling'", request_id)
    await drop_pending_week(conn, request_id)


async def stored_plans(conn: Connection, request_ids: list[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """The plans already stored for these requests: plan id by request id."""
    if not request_ids:
        return {}
    rows = await conn.fetch("SELECT request_id, id FROM workout_plans WHERE request_id = ANY($1::uuid[])", request_ids)
    return {row["request_id"]: row["id"] for row in rows}


async def _add_usage(conn: Connection, usages: Sequence[tuple[uuid.UUID, LlmUsage]], stage: str | None = None) -> None:
    await conn.execute(
        "UPDATE workout_plan_requests r SET prompt_tokens = r.prompt_tokens + u.prompt_tokens,"
        " completion_tokens = r.completion_tokens + u.completion_tokens, llm_calls = r.llm_calls + u.calls,"
        " stage = coalesce($5, r.stage), updated_at = clock_timestamp()"
        " FROM unnest($1::uuid[], $2::int[], $3::int[], $4::int[]) AS u(id, prompt_tokens, completion_tokens, calls)"
        " WHERE r.id = u.id",
        [request_id for request_id, _ in usages],
        [usage.prompt_tokens for _, usage in usages],
        [usage.completion_tokens for _, usage in usages],
        [usage.calls for _, usage in usages],
        stage,
    )
