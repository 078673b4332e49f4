"""Weeks written again: a new version waits for its exercises' profiles, then replaces the week.

Called inside a persister transaction that already holds the regeneration request's lock (the
lock order is in ``postgres.py``; the plan's row is locked after the exercises, as plans are last).
A version is stored ``pending`` with the keys of the exercises it uses; once every one of them has
a profile (at once over a warm catalogue), ``swap_in`` replaces the week's entries, makes it the
week's ``current`` version and the one before it ``superseded`` (the week as first stored becomes
version 1 the first time), and turns the request ``completed``, last, in the same transaction.
"""

import logging
import uuid
from itertools import groupby
from operator import itemgetter

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from contracts.events import ExerciseRef, WeekGenerated
from contracts.plan import PrescribedExercise, TrainingDay, TrainingWeek
from service_runtime.outcomes import GiveUp
from services.persister.entry_rows import ENTRY_COLUMNS, exercise_columns, week_entry_records
from services.persister.plan_rows import catalogue_rows
from services.persister.plans import Completion, Waiting

__all__ = ["PLAN_CHANGED", "drop_pending_week", "store_week", "week_if_ready"]

log = logging.getLogger(__name__)

PLAN_CHANGED = "plan_changed: another week of this plan was written again meanwhile; ask again"

Connection = asyncpg.Connection | PoolConnectionProxy

_PENDING = """
SELECT v.plan_id, v.week, v.content, v.exercises, v.quality, v.plan_revision, p.start_date
FROM workout_week_versions v JOIN workout_plans p ON p.id = v.plan_id
WHERE v.request_id = $1 AND v.state = 'pending'
"""

_EXERCISES = "SELECT key, name, profile IS NOT NULL AS profiled FROM exercises WHERE key = ANY($1::text[]) ORDER BY key"

# Entries by workout_plan_id (equal to plan_id): their one plan index leads with it (migration 0021).
_WEEK_ENTRIES = """
SELECT week_theme, day_of_week AS day, day_focus, exercise_name, sets, reps, rest_seconds, notes
FROM workout_entries WHERE workout_plan_id = $1 AND week = $2 ORDER BY day_of_week, position
"""


async def store_week(conn: Connection, event: WeekGenerated, user_id: uuid.UUID) -> bool:
    """Store the week as its request's pending version (once: False when it already was); its
    exercises join the catalogue. ``GiveUp`` when the plan is not the user's, or not there."""
    plan = await conn.fetchrow(
        "SELECT id FROM workout_plans WHERE id = $1 AND user_id = $2 AND assembly = 'complete'",
        event.plan_id,
        user_id,
    )
    if plan is None:
        raise GiveUp("unknown_plan", f"no complete plan {event.plan_id} of the request's user")
    listed = {ref.name for ref in event.exercises}
    if any(item.name not in listed for day in event.week.days for item in day.exercises):
        raise GiveUp("inconsistent_plan", "the week names an exercise missing from the event's exercise list")
    await catalogue_rows(conn, event.exercises)
    stored = await conn.fetchval(
        "INSERT INTO workout_week_versions"
        " (plan_id, week, state, request_id, instruction, content, exercises, quality, prompt_version, model,"
        " plan_revision)"
        " VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $9, $10)"
        " ON CONFLICT (request_id) DO NOTHING RETURNING id",
        event.plan_id,
        event.week.week,
        event.request_id,
        event.instruction,
        event.week.model_dump(mode="json"),
        [ref.model_dump(mode="json") for ref in event.exercises],
        event.quality or None,
        event.prompt_version,
        event.usage.model,
        event.plan_revision,
    )
    return stored is not None


async def week_if_ready(conn: Connection, request_id: uuid.UUID, user_id: uuid.UUID) -> Completion | Waiting | None:
    """Swap the request's pending week in if every exercise it uses has a profile (``Completion``),
    else say which are missing (``Waiting``); None when it has no pending week (not stored yet), or
    when the plan was revised since the week was asked for (the request then ends failed,
    ``PLAN_CHANGED``)."""
    pending = await conn.fetchrow(_PENDING, request_id)
    if pending is None:
        return None
    refs = [ExerciseRef.model_validate(ref) for ref in pending["exercises"]]
    exercises = await conn.fetch(_EXERCISES, sorted({ref.key for ref in refs}))
    missing = tuple(ExerciseRef(key=row["key"], name=row["name"]) for row in exercises if not row["profiled"])
    if missing:
        return Waiting(request_id, len(exercises), len(exercises) - len(missing), missing)
    return await _swap_in(conn, request_id, user_id, pending, refs)


async def _swap_in(
    conn: Connection, request_id: uuid.UUID, user_id: uuid.UUID, pending: asyncpg.Record, refs: list[ExerciseRef]
) -> Completion | None:
    plan_id, number = pending["plan_id"], pending["week"]
    week = TrainingWeek.model_validate(pending["content"])
    # The lock order of ``postgres.py``: the request (held), the exercises (all there by now: this
    # reads their ids and equipment), then the plan.
    catalogue = await catalogue_rows(conn, refs)
    await conn.execute("SELECT FROM workout_plans WHERE id = $1 FOR UPDATE", plan_id)
    revision = await conn.fetchval(
        "SELECT coalesce(max(id), 0) FROM workout_week_versions WHERE plan_id = $1 AND state <> 'pending'", plan_id
    )
    if revision != pending["plan_revision"]:
        # Another week of the plan was written again between this one's read and its accept: it
        # was checked within a plan that is no longer the plan. Ended here, in this transaction (a
        # profile that brought it here is still stored).
        await drop_pending_week(conn, request_id)
        await conn.execute(
            "UPDATE workout_plan_requests SET status = 'failed', stage = 'persister', error = $2,"
            " completed_at = clock_timestamp(), updated_at = clock_timestamp() WHERE id = $1",
            request_id,
            PLAN_CHANGED,
        )
        log.warning("request %s: %s", request_id, PLAN_CHANGED)
        return None
    versions = await conn.fetchval(
        "SELECT count(*) FROM workout_week_versions WHERE plan_id = $1 AND week = $2 AND state <> 'pending'",
        plan_id,
        number,
    )
    if versions == 0:  # the week as the plan was first stored becomes version 1
        first = _week_of(number, await conn.fetch(_WEEK_ENTRIES, plan_id, number))
        await conn.execute(
            "INSERT INTO workout_week_versions (plan_id, week, version, state, content, current_from)"
            " SELECT $1, $2, 1, 'superseded', $3, completed_at FROM workout_plans WHERE id = $1",
            plan_id,
            number,
            first.model_dump(mode="json"),
        )
    else:
        await conn.execute(
            "UPDATE workout_week_versions SET state = 'superseded'"
            " WHERE plan_id = $1 AND week = $2 AND state = 'current'",
            plan_id,
            number,
        )
    await conn.execute(
        "UPDATE workout_week_versions SET state = 'current', current_from = clock_timestamp(),"
        " version = (SELECT max(version) + 1 FROM workout_week_versions WHERE plan_id = $2 AND week = $3)"
        " WHERE request_id = $1",
        request_id,
        plan_id,
        number,
    )
    await conn.execute("DELETE FROM workout_entries WHERE workout_plan_id = $1 AND week = $2", plan_id, number)
    rows = week_entry_records(week.model_dump(), plan_id, exercise_columns(refs, catalogue), pending["start_date"])
    await conn.copy_records_to_table("workout_entries", records=rows, columns=ENTRY_COLUMNS)
    if pending["quality"] is not None:
        await conn.execute("UPDATE workout_plans SET quality = $2 WHERE id = $1", plan_id, pending["quality"])
    # Status last: the request turns completed in the transaction that puts its week in the plan.
    seconds = await conn.fetchval(
        "UPDATE workout_plan_requests SET status = 'completed', stage = 'completed', plan_id = $2,"
        " completed_at = clock_timestamp(), updated_at = clock_timestamp() WHERE id = $1"
        " RETURNING extract(epoch FROM completed_at - created_at)::float8",
        request_id,
        plan_id,
    )
    return Completion(request_id, user_id, plan_id, seconds)


async def drop_pending_week(conn: Connection, request_id: uuid.UUID) -> None:
    """A failed or cancelled regeneration leaves no version behind; the plan was never touched."""
    await conn.execute("DELETE FROM workout_week_versions WHERE request_id = $1 AND state = 'pending'", request_id)


def _week_of(number: int, rows: list[asyncpg.Record]) -> TrainingWeek:
    """A week read back from its entries (ordered by day and position)."""
    days = [
        TrainingDay(
            day=day,
            focus=items[0]["day_focus"],
            exercises=[
                PrescribedExercise(
                    name=row["exercise_name"],
                    sets=row["sets"],
                    reps=row["reps"],
                    rest_seconds=row["rest_seconds"],
                    notes=row["notes"],
                )
                for row in items
            ],
        )
        for day, grouped in groupby(rows, key=itemgetter("day"))
        if (items := list(grouped))
    ]
    return TrainingWeek(week=number, theme=rows[0]["week_theme"], days=days)
