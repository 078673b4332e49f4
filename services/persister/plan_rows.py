"""A generated plan's rows: its exercises in the catalogue, its ``workout_plans`` row and its entries.

Written inside the persister's plan transaction (``PostgresPlanStore.store_plan``), after the
request's lock (the lock order is in ``postgres.py``).
"""

import datetime
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from contracts.events import ExerciseRef, PlanGenerated
from service_runtime.outcomes import GiveUp

__all__ = ["ENTRY_COLUMNS", "catalogue_rows", "entry_records", "insert_plan"]

Connection = asyncpg.Connection | PoolConnectionProxy

ENTRY_COLUMNS = (
    "plan_id",
    "week",
    "day_of_week",
    "position",
    "week_theme",
    "day_focus",
    "exercise_key",
    "exercise_name",
    "sets",
    "reps",
    "rest_seconds",
    "notes",
    # What the original app's columns need and the entries trigger would otherwise look up per row
    # (migration 0011): with these given, it only copies columns across.
    "exercise_id",
    "equipment",
    "date",
)

# The plan's exercises in the catalogue: the new ones inserted (sorted keys: concurrent plans
# sharing new exercises insert them in one order, no deadlock), and every one's id and equipment.
# Keys the catalogue already has are not offered to the INSERT, whose row trigger would run for
# each; the statement's snapshot cannot see a row another transaction committed meanwhile, or one
# the trigger took over from the original's catalogue, so a key missing from the result is read
# again (``catalogue_rows``).
_CATALOGUE_ROWS = """
WITH wanted AS (SELECT k, n FROM unnest($1::text[], $2::text[]) AS t(k, n)),
new AS (
    INSERT INTO exercises (key, name)
    SELECT k, n FROM wanted WHERE NOT EXISTS (SELECT FROM exercises x WHERE x.key = wanted.k) ORDER BY k
    ON CONFLICT (key) DO NOTHING
    RETURNING key, id, required_equipment
)
SELECT key, id, required_equipment FROM new
UNION ALL
SELECT x.key, x.id, x.required_equipment FROM exercises x JOIN wanted ON x.key = wanted.k
"""


async def insert_plan(conn: Connection, event: PlanGenerated) -> uuid.UUID:
    catalogue = await catalogue_rows(conn, event.exercises)
    plan_id = uuid.uuid4()
    start_date = await conn.fetchval(
        "INSERT INTO workout_plans (id, request_id, user_id, assembly, title, summary, model, prompt_version)"
        " VALUES ($1, $2, $3, 'assembling', $4, $5, $6, $7) RETURNING start_date",
        plan_id,
        event.request_id,
        event.user_id,
        event.plan.title,
        event.plan.summary,
        event.usage.model,
        event.prompt_version,
    )
    rows = entry_records(event, plan_id, catalogue, start_date)
    await conn.copy_records_to_table("workout_entries", records=rows, columns=ENTRY_COLUMNS)
    return plan_id


async def catalogue_rows(conn: Connection, refs: Sequence[ExerciseRef]) -> dict[str, tuple[uuid.UUID, str | None]]:
    """Each exercise's catalogue id and equipment, by key; the ones the catalogue lacked are added."""
    exercises = sorted({ref.key: ref.name for ref in refs}.items())
    keys = [k for k, _ in exercises]
    rows = await conn.fetch(_CATALOGUE_ROWS, keys, [n for _, n in exercises])
    found = {row["key"]: (row["id"], row["required_equipment"]) for row in rows}
    if unseen := [k for k in keys if k not in found]:
        rows = await conn.fetch("SELECT key, id, required_equipment FROM exercises WHERE key = ANY($1::text[])", unseen)
        found.update({row["key"]: (row["id"], row["required_equipment"]) for row in rows})
    return found


def entry_records(
    event: PlanGenerated,
    plan_id: uuid.UUID,
    catalogue: Mapping[str, tuple[uuid.UUID, str | None]],
    start_date: datetime.date,
) -> list[tuple[Any, ...]]:
    """The plan's ``workout_entries`` rows, in ``ENTRY_COLUMNS`` order. An entry's date is the
    plan's start date moved to the entry's week and weekday (day 1 is a Monday), as 0008 dates them."""
    key_of = {ref.name: ref.key for ref in event.exercises}
    start_weekday = start_date.isoweekday()
    rows: list[tuple[Any, ...]] = []
    for week in event.plan.weeks:
        for day in week.days:
            date = start_date + datetime.timedelta(days=(week.week - 1) * 7 + (day.day - start_weekday + 7) % 7)
            for position, item in enumerate(day.exercises, start=1):
                key = key_of.get(item.name)
                if key is None or key not in catalogue:
                    raise GiveUp(
                        "inconsistent_plan", f"exercise {item.name!r} is missing from the event's exercise list"
                    )
                exercise_id, equipment = catalogue[key]
                row = (plan_id, week.week, day.day, position, week.theme, day.focus, key, item.name)
                rows.append((*row, item.sets, item.reps, item.rest_seconds, item.notes, exercise_id, equipment, date))
    return rows
