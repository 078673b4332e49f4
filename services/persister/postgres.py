"""The Postgres adapter of ``PlanStore``.

Lock order, the same in every transaction: the request row first (``FOR UPDATE``), then
exercise rows (inserted in sorted key order), then the plan. Locking the request row, which
exists before any event about it, serialises everything that can complete one request; the
completeness count runs after that lock is held, so under READ COMMITTED it sees whatever the
previous holder committed. Without it, a plan and its last profile committing at the same
time could each conclude the other was still missing and leave the plan waiting forever.
"""

import logging
import uuid

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy

from contracts.events import ExerciseProfiled, ExerciseRef, LlmUsage, PlanCancelled, PlanFailed, PlanGenerated
from service_runtime.outcomes import GiveUp
from service_runtime.pools import nothing_to_reset
from services.persister.plan_rows import insert_plan
from services.persister.plans import Completion, Waiting

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
WHERE x.key IN (SELECT exercise_key FROM workout_entries WHERE plan_id = (SELECT id FROM plan))
"""


# Whether a profile can change anything for its request: see ``store_profile``.
_SEEN = "SELECT status, user_id, plan_id FROM workout_plan_requests WHERE id = $1"


async def create_pool(dsn: str, min_size: int, max_size: int) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, reset=nothing_to_reset
    )
    assert pool is not None
    return pool


class PostgresPlanStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def store_plan(self, event: PlanGenerated) -> Completion | Waiting | None:
        async with self._pool.acquire() as conn, conn.transaction():
            request = await lock_request(conn, event.request_id)
            if request["status"] == "completed":
                return Completion(event.request_id, request["user_id"], request["plan_id"])
            if request["status"] != "processing":
                log.info("request %s is %s; dropping its plan", event.request_id, request["status"])
                return None
            plan_id = await conn.fetchval("SELECT id FROM workout_plans WHERE request_id = $1", event.request_id)
            if plan_id is None:
                plan_id = await insert_plan(conn, event)
                await _add_usage(conn, event.request_id, event.usage, stage="profiling")
            return await complete_if_ready(conn, event.request_id, request["user_id"], plan_id)

    async def store_profile(self, event: ExerciseProfiled) -> Completion | Waiting | None:
        # A profile for a request already completed changes nothing, and one read says so without a
        # lock or a transaction: ``completed`` is final (and means every exercise of the plan, this
        # one included, has its profile). Anything else takes the request's lock: a plan whose
        # transaction counted this exercise missing before the profile committed may still be
        # committing, unseen by a read without the lock (a plan left waiting for good otherwise).
        seen = await self._pool.fetchrow(_SEEN, event.request_id)
        if seen is not None and seen["status"] == "completed":
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
                await _add_usage(conn, event.request_id, event.usage)
            if stored["plan_id"] is None:
                return None  # the plan is not stored yet; storing it will run the check
            if stored["missing"]:
                if not stored["written"]:
                    return None  # the exercise already had its profile: no progress to report
                return Waiting(event.request_id, stored["total"], stored["total"] - stored["missing"])
            return await complete(conn, event.request_id, request["user_id"], stored["plan_id"])

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
    """A failed or cancelled request keeps no half-assembled plan (its entries go with it)."""
    await conn.execute("DELETE FROM workout_plans WHERE request_id = $1 AND assembly = 'assembling'", request_id)


async def lock_request(conn: Connection, request_id: uuid.UUID) -> asyncpg.Record:
    request = await conn.fetchrow(
        "SELECT status, user_id, plan_id FROM workout_plan_requests WHERE id = $1 FOR UPDATE", request_id
    )
    if request is None:
        raise GiveUp("unknown_request", f"no request {request_id}")
    return request


async def _add_usage(conn: Connection, request_id: uuid.UUID, usage: LlmUsage, stage: str | None = None) -> None:
    await conn.execute(
        "UPDATE workout_plan_requests SET prompt_tokens = prompt_tokens + $2,"
        " completion_tokens = completion_tokens + $3, llm_calls = llm_calls + $4,"
        " stage = coalesce($5, stage), updated_at = clock_timestamp() WHERE id = $1",
        request_id,
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.calls,
        stage,
    )


# A plan's exercises, each with whether the catalogue has its profile yet.
_PLAN_EXERCISES = """
SELECT x.key, x.name, x.profile IS NOT NULL AS profiled FROM exercises x
WHERE x.key IN (SELECT exercise_key FROM workout_entries WHERE plan_id = $1)
ORDER BY x.key
"""


async def missing_profiles(conn: Connection, plan_id: uuid.UUID) -> tuple[int, tuple[ExerciseRef, ...]]:
    """How many distinct exercises the plan uses, and those still without a profile."""
    rows = await conn.fetch(_PLAN_EXERCISES, plan_id)
    missing = tuple(ExerciseRef(key=row["key"], name=row["name"]) for row in rows if not row["profiled"])
    return len(rows), missing


async def complete_if_ready(
    conn: Connection, request_id: uuid.UUID, user_id: uuid.UUID, plan_id: uuid.UUID
) -> Completion | Waiting:
    total, missing = await missing_profiles(conn, plan_id)
    if missing:
        return Waiting(request_id, total, total - len(missing), missing)
    return await complete(conn, request_id, user_id, plan_id)


async def complete(conn: Connection, request_id: uuid.UUID, user_id: uuid.UUID, plan_id: uuid.UUID) -> Completion:
    """Mark the plan complete and, last, the request ``completed``; the caller holds the request's lock
    and has seen every exercise of the plan profiled."""
    # The original app reads each entry's equipment; the profiles that name it are all in by now.
    await conn.execute(
        "UPDATE workout_entries e SET equipment = x.required_equipment FROM exercises x"
        " WHERE e.plan_id = $1 AND x.id = e.exercise_id AND e.equipment IS DISTINCT FROM x.required_equipment",
        plan_id,
    )
    profiling_seconds = await conn.fetchval(
        "UPDATE workout_plans SET assembly = 'complete', completed_at = clock_timestamp() WHERE id = $1"
        " RETURNING extract(epoch FROM completed_at - created_at)::float8",
        plan_id,
    )
    # Status last: the request turns completed in the transaction that makes the plan whole.
    total_seconds = await conn.fetchval(
        "UPDATE workout_plan_requests SET status = 'completed', stage = 'completed', plan_id = $2,"
        " completed_at = clock_timestamp(), updated_at = clock_timestamp() WHERE id = $1"
        " RETURNING extract(epoch FROM completed_at - created_at)::float8",
        request_id,
        plan_id,
    )
    return Completion(request_id, user_id, plan_id, total_seconds, profiling_seconds)
