"""Generated plans' rows: their exercises in the catalogue, their ``workout_plans`` rows and entries.

Written inside the persister's plan transaction (``PostgresPlanStore``, a group of plans at a
time), after the requests' locks (the lock order is in ``postgres.py``). The entries' rows are
built in ``entry_rows``.
"""

import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from contracts.events import ExerciseRef, TrustedPlanGenerated
from service_runtime.outcomes import GiveUp
from services.persister.entry_rows import ENTRY_COLUMNS, CatalogueRow, entry_records, new_ids

__all__ = [
    "NewPlan",
    "catalogue_rows",
    "check_consistent",
    "copy_entries",
    "insert_plan",
    "insert_plans",
    "may_skip_row_checks",
]

Connection = asyncpg.Connection | PoolConnectionProxy

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
