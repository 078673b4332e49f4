"""Completing plans: count each plan's exercises still without a profile, and complete the ones
that have them all, the request's status turning ``completed`` last.

Called inside a transaction that already holds the requests' locks (the lock order is in
``postgres.py``): by the plan writes, by a profile's write and by the sweeper.
"""

import uuid
from collections.abc import Collection, Mapping, Sequence

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from contracts.events import ExerciseRef, LlmUsage
from services.persister.plans import Completion, Waiting

__all__ = ["complete", "complete_if_ready", "complete_ready", "missing_profiles_of"]

Connection = asyncpg.Connection | PoolConnectionProxy


# Plans' exercises, each with whether the catalogue has its profile yet. Entries by
# workout_plan_id (equal to plan_id): their one plan index leads with it (migration 0021).
_PLAN_EXERCISES = """
SELECT e.plan_id, x.key, x.name, x.profile IS NOT NULL AS profiled
FROM (
    SELECT DISTINCT workout_plan_id AS plan_id, exercise_key
    FROM workout_entries WHERE workout_plan_id = ANY($1::uuid[])
) e
JOIN exercises x ON x.key = e.exercise_key
ORDER BY e.plan_id, x.key
"""


async def missing_profiles_of(
    conn: Connection, plan_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, tuple[ExerciseRef, ...]]]:
    """For each plan: how many distinct exercises it uses, and those still without a profile."""
    totals: dict[uuid.UUID, int] = {}
    missing: dict[uuid.UUID, list[ExerciseRef]] = {}
    for row in await conn.fetch(_PLAN_EXERCISES, plan_ids):
        totals[row["plan_id"]] = totals.get(row["plan_id"], 0) + 1
        if not row["profiled"]:
            missing.setdefault(row["plan_id"], []).append(ExerciseRef(key=row["key"], name=row["name"]))
    return {plan_id: (total, tuple(missing.get(plan_id, ()))) for plan_id, total in totals.items()}


async def complete_if_ready(
    conn: Connection, request_id: uuid.UUID, user_id: uuid.UUID, plan_id: uuid.UUID
) -> Completion | Waiting:
    return (await complete_ready(conn, [(request_id, user_id, plan_id)]))[request_id]


async def complete_ready(
    conn: Connection,
    plans: Sequence[tuple[uuid.UUID, uuid.UUID, uuid.UUID]],
    profiled: Collection[uuid.UUID] = (),
    usage: Mapping[uuid.UUID, LlmUsage] | None = None,
) -> dict[uuid.UUID, Completion | Waiting]:
    """For each (request, user, plan) whose request's lock the caller holds: complete the ones whose
    exercises all have profiles, and say what the others wait for. By request id. ``profiled``:
    plans known to be ready without a count (``plan_rows.NewPlan.profiled``: written in this
    transaction from catalogue rows that all had their profile). ``usage``: tokens to add to a
    request as it completes (``complete``); the caller adds the others' itself."""
    if not plans:
        return {}
    to_count = [plan_id for _, _, plan_id in plans if plan_id not in profiled]
    exercises = await missing_profiles_of(conn, to_count) if to_count else {}
    outcomes: dict[uuid.UUID, Completion | Waiting] = {}
    ready: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]] = []
    for request_id, user_id, plan_id in plans:
        total, missing = exercises.get(plan_id, (0, ()))
        if missing:
            outcomes[request_id] = Waiting(request_id, total, total - len(missing), missing)
        else:
            ready.append((request_id, user_id, plan_id))
    if ready:
        outcomes.update({c.request_id: c for c in await complete(conn, ready, profiled, usage)})
    return outcomes


async def complete(
    conn: Connection,
    plans: Sequence[tuple[uuid.UUID, uuid.UUID, uuid.UUID]],
    equipment_current: Collection[uuid.UUID] = (),
    usage: Mapping[uuid.UUID, LlmUsage] | None = None,
) -> list[Completion]:
    """Mark each (request, user, plan) complete and, last, its request ``completed``; the caller holds
    the requests' locks and has seen every exercise of each plan profiled. ``equipment_current``:
    plans whose entries were written with their profiled exercises' equipment (nothing to copy).
    ``usage``: tokens to add to a request in the same update (a plan written and completed in one
    transaction: one new row version of its request instead of two)."""
    request_ids = [request_id for request_id, _, _ in plans]
    plan_ids = [plan_id for _, _, plan_id in plans]
    # The original app reads each entry's equipment; the profiles that name it are all in by now.
    if stale := [plan_id for plan_id in plan_ids if plan_id not in equipment_current]:
        await conn.execute(
            "UPDATE workout_entries e SET equipment = x.required_equipment FROM exercises x"
            " WHERE e.workout_plan_id = ANY($1::uuid[]) AND x.id = e.exercise_id"
            " AND e.equipment IS DISTINCT FROM x.required_equipment",
            stale,
        )
    profiling = await conn.fetch(
        "UPDATE workout_plans SET assembly = 'complete', completed_at = clock_timestamp() WHERE id = ANY($1::uuid[])"
        " RETURNING id, extract(epoch FROM completed_at - created_at)::float8 AS seconds",
        plan_ids,
    )
    # Status last: the request turns completed in the transaction that makes the plan whole.
    adding = [usage.get(request_id) for request_id in request_ids] if usage else [None] * len(request_ids)
    total = await conn.fetch(
        "UPDATE workout_plan_requests r SET status = 'completed', stage = 'completed', plan_id = c.plan_id,"
        " prompt_tokens = r.prompt_tokens + c.prompt_tokens, completion_tokens = r.completion_tokens"
        " + c.completion_tokens, llm_calls = r.llm_calls + c.calls,"
        " completed_at = clock_timestamp(), updated_at = clock_timestamp()"
        " FROM unnest($1::uuid[], $2::uuid[], $3::int[], $4::int[], $5::int[])"
        " AS c(request_id, plan_id, prompt_tokens, completion_tokens, calls) WHERE r.id = c.request_id"
        " RETURNING r.id, extract(epoch FROM r.completed_at - r.created_at)::float8 AS seconds",
        request_ids,
        plan_ids,
        [u.prompt_tokens if u else 0 for u in adding],
        [u.completion_tokens if u else 0 for u in adding],
        [u.calls if u else 0 for u in adding],
    )
    profiling_seconds = {row["id"]: row["seconds"] for row in profiling}
    total_seconds = {row["id"]: row["seconds"] for row in total}
    return [
        Completion(request_id, user_id, plan_id, total_seconds.get(request_id), profiling_seconds.get(plan_id))
        for request_id, user_id, plan_id in plans
    ]
