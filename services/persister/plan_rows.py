"""Generated plans' rows: their exercises in the catalogue, their ``workout_plans`` rows and entries.

Written inside the persister's plan transaction (``PostgresPlanStore``, a group of plans at a
time), after the requests' locks (the lock order is in ``postgres.py``).
"""

import datetime
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from contracts.events import ExerciseRef, PlanGenerated
from contracts.plan import TrainingWeek
from service_runtime.outcomes import GiveUp

__all__ = [
    "ENTRY_COLUMNS",
    "catalogue_rows",
    "check_consistent",
    "entry_records",
    "insert_plan",
    "insert_plans",
    "week_entry_records",
]

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
    # (migration 0011), and the original's names for ours: with every one given and equal, the
    # trigger is not called at all (its WHEN clause, migration 0013).
    "exercise_id",
    "equipment",
    "date",
    "workout_plan_id",
    "week_number",
    "day",
    "day_name",
)

# The original app's ``weekday`` enum, by our day number (1 is Monday).
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

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


_INSERT_PLANS = """
INSERT INTO workout_plans
    (id, request_id, user_id, assembly, title, summary, model, prompt_version, quality, skeleton)
SELECT id, request_id, user_id, 'assembling', title, summary, model, prompt_version, quality, skeleton
FROM unnest(
    $1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::jsonb[], $9::jsonb[]
) AS t(id, request_id, user_id, title, summary, model, prompt_version, quality, skeleton)
RETURNING id, start_date
"""


async def insert_plan(conn: Connection, event: PlanGenerated) -> uuid.UUID:
    check_consistent(event)
    return (await insert_plans(conn, [event]))[0]


async def insert_plans(conn: Connection, events: Sequence[PlanGenerated]) -> list[uuid.UUID]:
    """Store the plans (each checked with ``check_consistent`` first) and their entries: the
    catalogue rows of all of them in one statement, the plan rows in one, every entry in one COPY.
    Returns each plan's id, in order."""
    catalogue = await catalogue_rows(conn, [ref for event in events for ref in event.exercises])
    plan_ids = [uuid.uuid4() for _ in events]
    columns = zip(
        *(
            (
                e.request_id,
                e.user_id,
                e.plan.title,
                e.plan.summary,
                e.usage.model,
                e.prompt_version,
                e.quality or None,
                None if e.skeleton is None else e.skeleton.model_dump(mode="json"),
            )
            for e in events
        ),
        strict=True,
    )
    stored = await conn.fetch(_INSERT_PLANS, plan_ids, *columns)
    start_dates = {row["id"]: row["start_date"] for row in stored}
    rows = [
        row
        for event, plan_id in zip(events, plan_ids, strict=True)
        for row in entry_records(event, plan_id, catalogue, start_dates[plan_id])
    ]
    await conn.copy_records_to_table("workout_entries", records=rows, columns=ENTRY_COLUMNS)
    return plan_ids


def check_consistent(event: PlanGenerated) -> None:
    """Every exercise the plan's days name is in the event's exercise list (``GiveUp`` otherwise)."""
    listed = {ref.name for ref in event.exercises}
    for week in event.plan.weeks:
        for day in week.days:
            for item in day.exercises:
                if item.name not in listed:
                    raise GiveUp(
                        "inconsistent_plan", f"exercise {item.name!r} is missing from the event's exercise list"
                    )


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
    """The plan's ``workout_entries`` rows, in ``ENTRY_COLUMNS`` order."""
    key_of = {ref.name: ref.key for ref in event.exercises}
    return [
        row for week in event.plan.weeks for row in week_entry_records(week, plan_id, key_of, catalogue, start_date)
    ]


def week_entry_records(
    week: TrainingWeek,
    plan_id: uuid.UUID,
    key_of: Mapping[str, str],
    catalogue: Mapping[str, tuple[uuid.UUID, str | None]],
    start_date: datetime.date,
) -> list[tuple[Any, ...]]:
    """One week's ``workout_entries`` rows, in ``ENTRY_COLUMNS`` order (``key_of``: each exercise
    name's catalogue key). An entry's date is the plan's start date moved to the entry's week and
    weekday (day 1 is a Monday), as 0008 dates them."""
    start_weekday = start_date.isoweekday()
    rows: list[tuple[Any, ...]] = []
    for day in week.days:
        date = start_date + datetime.timedelta(days=(week.week - 1) * 7 + (day.day - start_weekday + 7) % 7)
        for position, item in enumerate(day.exercises, start=1):
            key = key_of.get(item.name)
            if key is None or key not in catalogue:
                raise GiveUp("inconsistent_plan", f"exercise {item.name!r} is missing from the event's exercise list")
            exercise_id, equipment = catalogue[key]
            row = (plan_id, week.week, day.day, position, week.theme, day.focus, key, item.name)
            rows.append(
                (
                    *row,
                    item.sets,
                    item.reps,
                    item.rest_seconds,
                    item.notes,
                    exercise_id,
                    equipment,
                    date,
                    plan_id,
                    week.week,
                    WEEKDAYS[day.day - 1],
                    day.focus,
                )
            )
    return rows
