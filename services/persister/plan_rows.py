"""Generated plans' rows: their exercises in the catalogue, their ``workout_plans`` rows and entries.

Written inside the persister's plan transaction (``PostgresPlanStore``, a group of plans at a
time), after the requests' locks (the lock order is in ``postgres.py``).
"""

import datetime
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import asyncpg
from asyncpg.pgproto import pgproto
from asyncpg.pool import PoolConnectionProxy

from contracts.events import ExerciseRef, TrustedPlanGenerated
from service_runtime.ids import uuid7_bytes
from service_runtime.outcomes import GiveUp

__all__ = [
    "ENTRY_COLUMNS",
    "CatalogueRow",
    "NewPlan",
    "catalogue_rows",
    "check_consistent",
    "copy_entries",
    "entry_records",
    "exercise_columns",
    "insert_plan",
    "insert_plans",
    "may_skip_row_checks",
    "new_ids",
    "week_entry_records",
]

Connection = asyncpg.Connection | PoolConnectionProxy

ENTRY_COLUMNS = (
    # A day's columns first, the same in each of its rows (``week_entry_records`` builds them once).
    "plan_id",
    "week",
    "day_of_week",
    "week_theme",
    "day_focus",
    # What the original app's columns need and the entries trigger would otherwise look up per row
    # (migration 0011), and the original's names for ours: with every one given and equal, the
    # trigger is not called at all (its WHEN clause, migration 0013).
    "date",
    "workout_plan_id",
    "week_number",
    "day",
    "day_name",
    # Made here (``new_ids``: time-ordered, see service_runtime/ids.py), not by the column's
    # default: gen_random_uuid() costs the server more per row than the rest of the row's insert but
    # its indexes (a build without OpenSSL, as pgserver's is, opens and reads /dev/urandom for each).
    "id",
    "position",
    "exercise_name",
    "sets",
    "reps",
    "rest_seconds",
    "notes",
    # The exercise's, the same wherever the plan names it.
    "exercise_key",
    "exercise_id",
    "equipment",
)

# The original app's ``weekday`` enum, by our day number (1 is Monday).
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# The plan's exercises in the catalogue: the new ones inserted (sorted keys: concurrent plans
# sharing new exercises insert them in one order, no deadlock), and every one's id and equipment.
# Keys the catalogue already has are not offered to the INSERT, whose row trigger would run for
# each; the statement's snapshot cannot see a row another transaction committed meanwhile, or one
# the trigger took over from the original's catalogue, so a key missing from the result is read
# again (``catalogue_rows``). The rows read are locked FOR KEY SHARE, the lock a foreign-key check
# takes: no exercise an entry will name can be deleted (or its id changed) before this transaction
# ends, which is what lets the entries' COPY skip its per-row checks (``copy_entries``).
_CATALOGUE_ROWS = """
WITH wanted AS (SELECT k, n FROM unnest($1::text[], $2::text[]) AS t(k, n)),
new AS (
    INSERT INTO exercises (key, name)
    SELECT k, n FROM wanted WHERE NOT EXISTS (SELECT FROM exercises x WHERE x.key = wanted.k) ORDER BY k
    ON CONFLICT (key) DO NOTHING
    RETURNING key, id, required_equipment, profile IS NOT NULL AS profiled
),
old AS (
    SELECT x.key, x.id, x.required_equipment, x.profile IS NOT NULL AS profiled
    FROM exercises x JOIN wanted ON x.key = wanted.k
    FOR KEY SHARE OF x
)
SELECT key, id, required_equipment, profiled FROM new
UNION ALL
SELECT key, id, required_equipment, profiled FROM old
"""

_CATALOGUE_ROWS_AGAIN = """
SELECT key, id, required_equipment, profile IS NOT NULL AS profiled FROM exercises WHERE key = ANY($1::text[])
FOR KEY SHARE
"""

# workout_entries' foreign keys (as pg_get_constraintdef writes them) that the persister's own
# entries satisfy by construction: workout_plan_id names a plan inserted by the same transaction
# (no one else can see it, let alone delete it, before the commit); exercise_id a catalogue row
# read, or inserted, by the same transaction and locked FOR KEY SHARE there (``_CATALOGUE_ROWS``),
# as the check would lock it; streak_exercise_id is NULL in every entry we write.
_SATISFIED_FOREIGN_KEYS = [
    "FOREIGN KEY (workout_plan_id) REFERENCES workout_plans(id) ON DELETE CASCADE",
    "FOREIGN KEY (exercise_id) REFERENCES exercises(id)",
    "FOREIGN KEY (streak_exercise_id) REFERENCES exercises(id)",
]

# Whether skipping the entries' row triggers (``copy_entries``) skips nothing but checks our rows
# pass anyway: every foreign key is one of the above, and the only enabled INSERT trigger is 0013's
# ``same_as_original_insert``, whose WHEN clause our rows never meet (``entry_records`` fills every
# column it would); and the session is in the usual role, the one ``_ROW_TRIGGERS_BACK`` restores.
# Any other trigger (a webhook, an audit, one the original app adds later) or foreign key, and
# nothing is skipped: asked for every group.
_ROW_CHECKS_REDUNDANT = """
SELECT current_setting('session_replication_role') = 'origin' AND NOT EXISTS (
    SELECT FROM pg_trigger
    WHERE tgrelid = 'workout_entries'::regclass AND NOT tgisinternal AND tgenabled <> 'D'
        AND tgtype & 4 <> 0 AND tgname <> 'same_as_original_insert'
) AND NOT EXISTS (
    SELECT FROM pg_constraint
    WHERE conrelid = 'workout_entries'::regclass AND contype = 'f'
        AND NOT (pg_get_constraintdef(oid) = ANY($1::text[]))
)
"""

# SET LOCAL statements (not set_config()): the form in which Supabase's supautils lets its
# ``postgres`` role set this superuser-only parameter.
_SKIP_ROW_TRIGGERS = "SET LOCAL session_replication_role = replica"
_ROW_TRIGGERS_BACK = "SET LOCAL session_replication_role = origin"


class CatalogueRow(NamedTuple):
    """An exercise as its entries need it: its id, its equipment, and whether it had its profile."""

    id: uuid.UUID
    equipment: str | None
    profiled: bool


class NewPlan(NamedTuple):
    """A plan stored by ``insert_plans``: its id, and whether every exercise it lists had its profile
    when its entries were written (it is complete as it stands: its entries' equipment is the
    profiles' already, and profiles are never taken back)."""

    id: uuid.UUID
    profiled: bool


_INSERT_PLANS = """
INSERT INTO workout_plans
    (id, request_id, user_id, assembly, title, summary, model, prompt_version, quality, skeleton)
SELECT id, request_id, user_id, 'assembling', title, summary, model, prompt_version, quality, skeleton
FROM unnest(
    $1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::jsonb[], $9::jsonb[]
) AS t(id, request_id, user_id, title, summary, model, prompt_version, quality, skeleton)
RETURNING id, start_date
"""


async def insert_plan(conn: Connection, event: TrustedPlanGenerated, *, skip_row_checks: bool = False) -> uuid.UUID:
    check_consistent(event)
    return (await insert_plans(conn, [event], skip_row_checks=skip_row_checks))[0].id


async def insert_plans(
    conn: Connection, events: Sequence[TrustedPlanGenerated], *, skip_row_checks: bool = False
) -> list[NewPlan]:
    """Store the plans (each checked with ``check_consistent`` first) and their entries: the
    catalogue rows of all of them in one statement, the plan rows in one, every entry in one COPY
    (``copy_entries``; ``skip_row_checks``: the role may skip row triggers). Returns each plan, in
    order."""
    catalogue = await catalogue_rows(conn, [ref for event in events for ref in event.exercises])
    plan_ids = new_ids(len(events))  # asyncpg's own UUIDs: each row names its plan twice
    columns = zip(
        *(
            (
                e.request_id,
                e.user_id,
                e.plan["title"],
                e.plan["summary"],
                e.usage.model,
                e.prompt_version,
                e.quality or None,
                e.skeleton,
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
    await copy_entries(conn, rows, skip_row_checks=skip_row_checks)
    return [
        NewPlan(plan_id, all(catalogue[ref.key].profiled for ref in event.exercises))
        for event, plan_id in zip(events, plan_ids, strict=True)
    ]


def check_consistent(event: TrustedPlanGenerated) -> None:
    """The plan has its weeks, days and exercises, and every exercise its days name is in the
    event's exercise list (``GiveUp`` otherwise), checked before the plan joins a group's write
    (``TrustedPlanGenerated``)."""
    listed = {ref.name for ref in event.exercises}
    try:
        for week in event.plan["weeks"]:
            for day in week["days"]:
                for item in day["exercises"]:
                    if item["name"] not in listed:
                        raise GiveUp(
                            "inconsistent_plan", f"exercise {item['name']!r} is missing from the event's exercise list"
                        )
    except (KeyError, TypeError) as exc:
        raise GiveUp("malformed_event", f"the plan has no {exc} where a WorkoutPlan has one") from exc


async def catalogue_rows(conn: Connection, refs: Sequence[ExerciseRef]) -> dict[str, CatalogueRow]:
    """Each exercise's catalogue row, by key, locked FOR KEY SHARE; the ones the catalogue lacked
    are added."""
    exercises = sorted({ref.key: ref.name for ref in refs}.items())
    keys = [k for k, _ in exercises]
    rows = await conn.fetch(_CATALOGUE_ROWS, keys, [n for _, n in exercises])
    found = {row["key"]: CatalogueRow(row["id"], row["required_equipment"], row["profiled"]) for row in rows}
    if unseen := [k for k in keys if k not in found]:
        rows = await conn.fetch(_CATALOGUE_ROWS_AGAIN, unseen)
        found.update({row["key"]: CatalogueRow(row["id"], row["required_equipment"], row["profiled"]) for row in rows})
    return found


async def copy_entries(conn: Connection, rows: Sequence[tuple[Any, ...]], *, skip_row_checks: bool) -> None:
    """COPY entries (``ENTRY_COLUMNS``, built by ``entry_records`` from catalogue rows read by
    ``catalogue_rows`` and plans inserted in the caller's transaction). With ``skip_row_checks``
    (the role may set ``session_replication_role``: ``may_skip_row_checks``) and the table as
    ``_ROW_CHECKS_REDUNDANT`` expects it, without the per-row foreign-key checks: two queries per
    entry row, over half of Postgres's time for a plan, each proving again what the transaction
    already holds. The constraints stay (every other writer is checked, pg_graphql and PostgREST
    still see the relations)."""
    skipping = skip_row_checks and bool(await conn.fetchval(_ROW_CHECKS_REDUNDANT, _SATISFIED_FOREIGN_KEYS))
    if skipping:
        await conn.execute(_SKIP_ROW_TRIGGERS)
    await conn.copy_records_to_table("workout_entries", records=rows, columns=ENTRY_COLUMNS)
    if skipping:
        await conn.execute(_ROW_TRIGGERS_BACK)


async def may_skip_row_checks(conn: Connection) -> bool:
    """Whether the role may set ``session_replication_role`` (a superuser; on Supabase, whose
    ``supautils`` lets ``postgres`` set it; PG 15+: granted ``SET`` on it), which ``copy_entries``
    needs to skip the entries' row checks. Asked in a transaction of its own, outside any other."""
    try:
        async with conn.transaction():
            await conn.execute(_SKIP_ROW_TRIGGERS)
    except asyncpg.InsufficientPrivilegeError:
        return False
    return True


def entry_records(
    event: TrustedPlanGenerated,
    plan_id: uuid.UUID,
    catalogue: Mapping[str, CatalogueRow],
    start_date: datetime.date,
) -> list[tuple[Any, ...]]:
    """The plan's ``workout_entries`` rows, in ``ENTRY_COLUMNS`` order."""
    exercises = exercise_columns(event.exercises, catalogue)
    weeks = event.plan["weeks"]
    # The plan's entry ids in one call: a call per week cost more than the ids themselves.
    ids = iter(new_ids(sum(len(day["exercises"]) for week in weeks for day in week["days"])))
    return [row for week in weeks for row in week_entry_records(week, plan_id, exercises, start_date, ids)]


def exercise_columns(
    refs: Iterable[ExerciseRef], catalogue: Mapping[str, CatalogueRow]
) -> dict[str, tuple[str, uuid.UUID, str | None]]:
    """By exercise name, its entries' last columns (key, id, equipment), for the exercises the
    catalogue has."""
    return {ref.name: (ref.key, *catalogue[ref.key][:2]) for ref in refs if ref.key in catalogue}


def week_entry_records(
    week: Mapping[str, Any],
    plan_id: uuid.UUID,
    exercises: Mapping[str, tuple[str, uuid.UUID, str | None]],
    start_date: datetime.date,
    ids: Iterator[uuid.UUID] | None = None,
) -> list[tuple[Any, ...]]:
    """One week's ``workout_entries`` rows, in ``ENTRY_COLUMNS`` order, from the week as JSON (a
    ``TrainingWeek``'s fields; ``exercises``: ``exercise_columns``). An entry's date is the plan's
    start date moved to the entry's week and weekday (day 1 is a Monday), as 0008 dates them.
    Entry ids are taken from ``ids`` (``new_ids``), or made here."""
    number, theme, days = week["week"], week["theme"], week["days"]
    start_weekday = start_date.isoweekday()
    entry_ids = ids if ids is not None else iter(new_ids(sum(len(day["exercises"]) for day in days)))
    rows: list[tuple[Any, ...]] = []
    for day in days:
        weekday, focus = day["day"], day["focus"]
        date = start_date + datetime.timedelta(days=(number - 1) * 7 + (weekday - start_weekday + 7) % 7)
        head = (plan_id, number, weekday, theme, focus, date, plan_id, number, WEEKDAYS[weekday - 1], focus)
        for position, item in enumerate(day["exercises"], start=1):
            name = item["name"]
            exercise = exercises.get(name)
            if exercise is None:
                raise GiveUp("inconsistent_plan", f"exercise {name!r} is missing from the event's exercise list")
            # Concatenated, not unpacked into one tuple: a third less time per row (128 per plan).
            rows.append(
                head  # noqa: RUF005
                + (next(entry_ids), position, name, item["sets"], item["reps"], item["rest_seconds"], item["notes"])
                + exercise
            )
    return rows


def new_ids(count: int) -> list[uuid.UUID]:
    """``count`` new row ids, time-ordered (``service_runtime.ids``: each index they go into grows
    at its right edge), as asyncpg's own UUID type, which it sends without converting."""
    data = uuid7_bytes(count)
    return [pgproto.UUID(data[start : start + 16]) for start in range(0, len(data), 16)]
