"""Our migrations on the original app's own database (its tables, columns and rows already there)
and on an empty one end in one schema; the original's rows read as before through the app's own
queries; and a new request flows through our real gateway and persister code to a plan the app
reads as ``completed``."""

import datetime as dt
import uuid
from pathlib import Path

import asyncpg
import pytest

from services.gateway.postgres import PostgresRequests
from services.gateway.requests import PlanRequests, Quotas
from services.persister.migrations import MIGRATIONS_DIR
from services.persister.postgres import PostgresPlanStore, create_pool
from tests.fakes import RecordingPublisher
from tests.integration.seeding import events_for
from tests.supabase_like import (
    APP_ENTRIES,
    APP_PLAN,
    APP_REQUESTS,
    ORIGINAL_APP,
    SUPABASE_LIKE,
    add_auth_user,
    as_api_role,
    new_database,
    run_migrations,
    shared_schema,
)

pytestmark = pytest.mark.integration

FIRST_RELEASE_0001 = Path(__file__).parents[1] / "migrations_0001_as_first_released.sql"
LEGACY_EXERCISE = "Goblet Squat"  # in the original's catalogue, and in our new plan


async def seed_original_rows(conn: asyncpg.Connection, user_id: uuid.UUID) -> dict[str, uuid.UUID]:
    """What the original app left: a completed request with its plan, entries and exercises, a
    failed one, and one that died 'processing' days ago (the original's timeout)."""
    await add_auth_user(conn, user_id)
    ids = {name: uuid.uuid4() for name in ("squat", "pushup", "plan", "done", "done_rid", "failed", "stuck")}
    for key, name in (("squat", LEGACY_EXERCISE), ("pushup", "Push-Up")):
        await conn.execute(
            "INSERT INTO exercises (id, name, slug, icon_description, instructions, video_description,"
            " equipment_text, equipment_groups, rep_limitations_progression_rules, progression_by_client_feedback,"
            " pain_injury_protocol, special_rules_by_location, trainer_notes)"
            " VALUES ($1, $2, $3, 'icon', $4, 'video', 'kettlebell', '[]', 'r', 'p', 'pain', 'loc', 'notes')",
            ids[key],
            name,
            name.lower().replace(" ", "-"),
            f"How to do a {name} (curated)",
        )
    await conn.execute(
        "INSERT INTO workout_plans (id, user_id, summary, start_date, created_at)"
        " VALUES ($1, $2, 'Original plan', '2025-01-06', '2025-01-05')",
        ids["plan"],
        user_id,
    )
    for week, day, exercise in ((1, "monday", "squat"), (1, "wednesday", "pushup"), (2, "monday", "squat")):
        await conn.execute(
            "INSERT INTO workout_entries (workout_plan_id, week_number, day_name, day, date, exercise_id, sets, reps,"
            " streak_exercise_id) VALUES ($1, $2, 'Lower body', $3::weekday, '2025-01-06', $4, 3, '10', $5)",
            ids["plan"],
            week,
            day,
            ids[exercise],
            ids["pushup"],
        )
    await conn.execute(
        "INSERT INTO workout_plan_requests (id, request_id, user_id, status, workout_plan_id, user_profile,"
        " created_at, completed_at, current_step) VALUES ($1, $2, $3, 'completed', $4, 'old profile',"
        " '2025-01-05 10:00Z', '2025-01-05 10:05Z', 3)",
        ids["done"],
        ids["done_rid"],
        user_id,
        ids["plan"],
    )
    await conn.execute(
        "INSERT INTO workout_plan_requests (id, request_id, user_id, status, user_profile, error_message,"
        " created_at, completed_at) VALUES ($1, $1, $2, 'failed', 'p', 'OpenAI timeout', '2025-01-04Z', '2025-01-04Z')",
        ids["failed"],
        user_id,
    )
    await conn.execute(
        "INSERT INTO workout_plan_requests (id, request_id, user_id, user_profile, created_at)"
        " VALUES ($1, $1, $2, 'p', '2025-01-03Z')",
        ids["stuck"],
        user_id,
    )
    return ids


# The app's plan query, on the columns the original's own tables had.
ORIGINAL_ENTRIES = """
SELECT e.id, e.week_number, e.day_name, e.day::text, e.date, e.sets, e.reps, x.name, x.instructions
FROM workout_entries e JOIN exercises x ON x.id = e.exercise_id
WHERE e.workout_plan_id = $1 ORDER BY e.week_number, e.day
"""


async def app_reads(conn: asyncpg.Connection, user_id: uuid.UUID, plan_id: uuid.UUID) -> object:
    async with as_api_role(conn, "authenticated", user_id):
        requests = [dict(r) for r in await conn.fetch(APP_REQUESTS, user_id)]
        plan = dict(await conn.fetchrow(APP_PLAN, plan_id) or {})
        entries = [dict(r) for r in await conn.fetch(ORIGINAL_ENTRIES, plan_id)]
    return requests, plan, entries


async def test_the_original_database_and_an_empty_one_end_in_one_schema(database_url: str) -> None:
    async with (
        new_database(database_url, SUPABASE_LIKE) as empty,
        new_database(database_url, SUPABASE_LIKE, ORIGINAL_APP) as original,
    ):
        conn = await asyncpg.connect(original)
        try:
            await seed_original_rows(conn, uuid.uuid4())
        finally:
            await conn.close()
        await run_migrations(empty)
        await run_migrations(original)
        schemas = []
        for url in (empty, original):
            conn = await asyncpg.connect(url)
            try:
                schemas.append(await shared_schema(conn))
            finally:
                await conn.close()
    for part in ("columns", "constraints", "triggers"):
        assert schemas[0][part] == schemas[1][part], part


async def test_a_database_migrated_by_the_first_release_reaches_the_same_schema(database_url: str) -> None:
    async with new_database(database_url) as empty, new_database(database_url) as released:
        conn = await asyncpg.connect(released)
        try:
            # The files as a database of our first release applied them, and a plan stored then.
            await conn.execute(
                "CREATE TABLE schema_migrations"
                " (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for path in [FIRST_RELEASE_0001, *sorted(MIGRATIONS_DIR.glob("000[2-7]_*.sql"))]:
                await conn.execute(path.read_text())
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", path.stem.split("_as_")[0])
            request_id, user_id, plan_id = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            await conn.execute(
                "INSERT INTO workout_plan_requests (id, user_id, user_profile) VALUES ($1, $2, 'p')",
                request_id,
                user_id,
            )
            await conn.execute("INSERT INTO exercises (key, name, profile) VALUES ('squat', 'Squat', '{}')")
            await conn.execute(
                "INSERT INTO workout_plans (id, request_id, user_id, status, title, summary, model, created_at)"
                " VALUES ($1, $2, $3, 'complete', 't', 's', 'm', '2026-11-30')",  # a Monday
                plan_id,
                request_id,
                user_id,
            )
            await conn.execute(
                "INSERT INTO workout_entries (plan_id, week, day, position, week_theme, day_focus, exercise_key,"
                " exercise_name, sets, reps, rest_seconds)"
                " VALUES ($1, 2, 3, 1, 'w', 'Legs', 'squat', 'Squat', 3, '8', 90)",
                plan_id,
            )
            await conn.execute(
                "UPDATE workout_plan_requests SET status = 'completed', plan_id = $2 WHERE id = $1", request_id, plan_id
            )
        finally:
            await conn.close()
        await run_migrations(empty)
        await run_migrations(released)
        schemas = []
        for url in (empty, released):
            conn = await asyncpg.connect(url)
            try:
                schemas.append(await shared_schema(conn))
                if url == released:
                    row = await conn.fetchrow("SELECT request_id, workout_plan_id FROM workout_plan_requests")
                    entry = await conn.fetchrow("SELECT week_number, day::text, day_name, date FROM workout_entries")
            finally:
                await conn.close()
    for part in ("columns", "constraints", "triggers"):
        assert schemas[0][part] == schemas[1][part], part
    assert (row["request_id"], row["workout_plan_id"]) == (request_id, plan_id)
    assert tuple(entry) == (2, "wednesday", "Legs", dt.date(2026, 12, 9))


async def test_the_original_apps_rows_read_as_before(database_url: str) -> None:
    user_id = uuid.uuid4()
    async with new_database(database_url, SUPABASE_LIKE, ORIGINAL_APP) as url:
        conn = await asyncpg.connect(url)
        try:
            ids = await seed_original_rows(conn, user_id)
            before = await app_reads(conn, user_id, ids["plan"])
            await run_migrations(url)
            after = await app_reads(conn, user_id, ids["plan"])
            # The app's own queries, in full (with the columns only its guide names), also run.
            async with as_api_role(conn, "authenticated", user_id):
                entries = await conn.fetch(APP_ENTRIES, ids["plan"])
            ours = await conn.fetchrow(
                "SELECT stage, plan_id, error FROM workout_plan_requests WHERE id = $1", ids["done"]
            )
            # The original app edits an entry (swaps its exercise, moves it): our columns follow; and back.
            entry = await conn.fetchval("SELECT id FROM workout_entries WHERE exercise_id = $1 LIMIT 1", ids["squat"])
            await conn.execute(
                "UPDATE workout_entries SET exercise_id = $2, week_number = 3, day = 'friday' WHERE id = $1",
                entry,
                ids["pushup"],
            )
            swapped = await conn.fetchrow(
                "SELECT exercise_name, week, day_of_week, plan_id FROM workout_entries WHERE id = $1", entry
            )
            await conn.execute("UPDATE workout_entries SET week = 4, day_of_week = 2 WHERE id = $1", entry)
            moved = await conn.fetchrow("SELECT week_number, day::text FROM workout_entries WHERE id = $1", entry)
        finally:
            await conn.close()
    assert after == before
    requests = before[0]
    assert [r["request_id"] for r in requests] == [ids["done_rid"], ids["failed"], ids["stuck"]]
    assert [e["exercise_name"] for e in entries] == [LEGACY_EXERCISE, "Push-Up", LEGACY_EXERCISE]
    assert {e["streak_name"] for e in entries} == {"Push-Up"}
    assert tuple(ours) == ("completed", ids["plan"], None)
    assert tuple(swapped) == ("Push-Up", 3, 5, ids["plan"])
    assert tuple(moved) == (4, "tuesday")


async def test_a_new_request_on_the_original_database_completes_for_the_app(database_url: str) -> None:
    user_id = uuid.uuid4()
    async with new_database(database_url, SUPABASE_LIKE, ORIGINAL_APP) as url:
        conn = await asyncpg.connect(url)
        try:
            ids = await seed_original_rows(conn, user_id)
        finally:
            await conn.close()
        await run_migrations(url)
        pool = await create_pool(url, 1, 4)
        try:
            publisher = RecordingPublisher()
            gateway = PlanRequests(PostgresRequests(pool), publisher, publisher, Quotas(max_active=3, max_per_day=20))
            request_id = await gateway.create_request(user_id=user_id, user_profile="3x a week", system_prompt=None)
            generated, profiled = events_for(request_id, user_id, [LEGACY_EXERCISE, f"Row {uuid.uuid4().hex[:6]}"])
            persister = PostgresPlanStore(pool)
            await persister.store_plan(generated)
            async with pool.acquire() as conn:
                stored = await conn.fetchval("SELECT id FROM workout_plans WHERE request_id = $1", request_id)
                async with as_api_role(conn, "authenticated", user_id):
                    mid = {r["request_id"]: r for r in await conn.fetch(APP_REQUESTS, user_id)}
                    assembling = (await conn.fetchrow(APP_PLAN, stored), await conn.fetch(APP_ENTRIES, stored))
            for event in profiled:
                await persister.store_profile(event)
            async with pool.acquire() as conn:
                async with as_api_role(conn, "authenticated", user_id):
                    found = {r["request_id"]: r for r in await conn.fetch(APP_REQUESTS, user_id)}
                    plan_id = found[request_id]["workout_plan_id"]
                    plan = await conn.fetchrow(APP_PLAN, plan_id)
                    entries = await conn.fetch(APP_ENTRIES, plan_id)
                legacy = await conn.fetchrow(
                    "SELECT id, key, instructions FROM exercises WHERE name = $1", LEGACY_EXERCISE
                )
                used = await conn.fetch(
                    "SELECT DISTINCT exercise_id FROM workout_entries WHERE plan_id = $1 AND exercise_name = $2",
                    plan_id,
                    LEGACY_EXERCISE,
                )
                # The persister hands the entries trigger each row's date, exercise id and equipment:
                # the same values 0008's backfill and the trigger's own lookups give.
                disagreeing = await conn.fetchval(
                    "SELECT count(*) FROM workout_entries e JOIN workout_plans p ON p.id = e.plan_id"
                    " JOIN exercises x ON x.id = e.exercise_id WHERE e.plan_id = $1 AND (e.date <> p.start_date"
                    " + (e.week - 1) * 7 + (e.day_of_week - extract(isodow FROM p.start_date)::int + 7) % 7"
                    " OR e.exercise_key IS DISTINCT FROM x.key OR e.equipment IS DISTINCT FROM x.required_equipment)",
                    plan_id,
                )
            snapshot = await gateway.get_plan(user_id, plan_id)
            legacy_plan = await gateway.get_plan(user_id, ids["plan"])  # ours serves only plans we made
        finally:
            await pool.close()
    assert mid[request_id]["status"] == "processing" and mid[request_id]["workout_plan_id"] is None
    assert assembling == (None, [])  # a plan still being assembled is not the app's yet
    mine = found[request_id]
    assert (mine["id"], mine["status"], mine["error_message"]) == (request_id, "completed", None)
    assert mine["completed_at"] is not None
    assert found[ids["done_rid"]]["status"] == "completed"  # the original's request is still there
    assert plan is not None and plan["summary"] == generated.plan["summary"] and plan["status"] == "active"
    assert len(entries) == sum(len(d["exercises"]) for w in generated.plan["weeks"] for d in w["days"])
    assert {e["exercise_name"] for e in entries} == {ref.name for ref in generated.exercises}
    assert all(e["week_number"] and e["day"] and e["date"] and e["day_name"] for e in entries)
    assert disagreeing == 0
    assert all(e["exercise_instructions"] for e in entries)
    # Our plan's squat is the original's catalogue row (adopted, its curated text kept).
    assert [r["exercise_id"] for r in used] == [legacy["id"]] and legacy["key"] is not None
    assert legacy["instructions"] == f"How to do a {LEGACY_EXERCISE} (curated)"
    assert snapshot is not None and snapshot.plan_id == plan_id
    assert legacy_plan is None
