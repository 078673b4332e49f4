"""Databases prepared the way Supabase prepares its own (``supabase_like.sql``, sources cited
there), optionally holding the original app's tables (``original_app.sql``); and the original
app's reads, made the way PostgREST and pg_graphql make them: one transaction that switches to the
API role and sets the JWT's claims, as Supabase's Data API does for every request."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from contracts.events import PlanFailed
from devstack import migrate
from services.gateway.postgres import PostgresRequests
from services.gateway.requests import PlanRequests, Quotas
from services.persister.plans import Completion
from services.persister.postgres import PostgresPlanStore
from tests.fakes import RecordingPublisher
from tests.integration.seeding import events_for

HERE = Path(__file__).parent
SUPABASE_LIKE = HERE / "supabase_like.sql"
ORIGINAL_APP = HERE / "original_app.sql"
SHARED_TABLES = ("workout_plan_requests", "workout_plans", "workout_entries", "exercises")

# The original app's two GraphQL queries (its integration guide: GetWorkoutPlanRequests and
# GetWorkoutPlan) as the SQL pg_graphql runs for them, under the caller's role and policies.
APP_REQUESTS = """
SELECT id, request_id, status, workout_plan_id, error_message, created_at, completed_at
FROM workout_plan_requests WHERE user_id = $1 ORDER BY created_at DESC LIMIT 10
"""
APP_PLAN = "SELECT id, summary, start_date, status::text, created_at FROM workout_plans WHERE id = $1"
# `exercise` and `streakExercise` are pg_graphql's names for the two foreign keys to exercises.
APP_ENTRIES = """
SELECT e.id, e.week_number, e.day_name, e.day::text, e.date, e.sets, e.reps, e.weight, e.time, e.equipment,
       e.notes, x.name AS exercise_name, x.instructions AS exercise_instructions,
       x.required_equipment AS exercise_required_equipment, s.name AS streak_name
FROM workout_entries e
LEFT JOIN exercises x ON x.id = e.exercise_id
LEFT JOIN exercises s ON s.id = e.streak_exercise_id
WHERE e.workout_plan_id = $1
ORDER BY e.week_number, e.day, e.id
"""


@asynccontextmanager
async def new_database(server_url: str, *setup: Path) -> AsyncIterator[str]:
    """The URL of a new database on ``server_url``'s server, prepared with the ``setup`` SQL files
    (as the superuser), dropped afterwards."""
    name = f"supa_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = urlsplit(server_url)._replace(path=f"/{name}").geturl()
        try:
            conn = await asyncpg.connect(url)
            try:
                for path in setup:
                    await conn.execute(path.read_text())
            finally:
                await conn.close()
            yield url
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def run_migrations(url: str) -> None:
    """The real command (``python -m services.persister migrate``), as a deployment runs it."""
    await asyncio.to_thread(migrate, url)


@asynccontextmanager
async def as_api_role(
    conn: asyncpg.Connection, role: str, user_id: uuid.UUID | None = None
) -> AsyncIterator[asyncpg.Connection]:
    """``conn`` inside one transaction as PostgREST and pg_graphql run a request: the API role,
    and the JWT's claims in ``request.jwt.claims`` (local to the transaction)."""
    claims: dict[str, str] = {"role": role}
    if user_id is not None:
        claims["sub"] = str(user_id)
    async with conn.transaction():
        await conn.execute(f"SET LOCAL ROLE {role}")
        await conn.execute("SELECT set_config('request.jwt.claims', $1, true)", json.dumps(claims))
        yield conn


async def add_auth_user(conn: asyncpg.Connection, user_id: uuid.UUID) -> None:
    """A Supabase Auth user (the shared tables' user_id refers to auth.users on Supabase)."""
    await conn.execute(
        "INSERT INTO auth.users (id, aud, role, email) VALUES ($1, 'authenticated', 'authenticated', $2)",
        user_id,
        f"{user_id}@example.com",
    )


async def shared_schema(conn: asyncpg.Connection) -> dict[str, set[tuple[object, ...]]]:
    """The four shared tables' columns, constraints and triggers, to compare two databases."""
    tables = list(SHARED_TABLES)
    columns = await conn.fetch(
        "SELECT table_name, column_name, data_type, udt_name, is_nullable, column_default"
        " FROM information_schema.columns WHERE table_schema = 'public' AND table_name = ANY($1)",
        tables,
    )
    constraints = await conn.fetch(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = ANY(SELECT to_regclass(t) FROM unnest($1::text[]) AS t)",
        tables,
    )
    triggers = await conn.fetch(
        "SELECT tgrelid::regclass::text, tgname, tgfoid::regproc::text FROM pg_trigger"
        " WHERE NOT tgisinternal AND tgrelid = ANY(SELECT to_regclass(t) FROM unnest($1::text[]) AS t)",
        tables,
    )
    return {
        "columns": {tuple(r) for r in columns},
        "constraints": {tuple(r) for r in constraints},
        "triggers": {tuple(r) for r in triggers},
    }


async def request_to_completion(
    pool: asyncpg.Pool, user_id: uuid.UUID, names: list[str]
) -> tuple[uuid.UUID, uuid.UUID]:
    """A request accepted by the gateway's store and completed by the persister's, as in production
    (events handed over directly instead of over NATS); returns its request id and plan id."""
    publisher = RecordingPublisher()
    gateway = PlanRequests(PostgresRequests(pool), publisher, publisher, Quotas(max_active=10, max_per_day=100))
    request_id = await gateway.create_request(user_id=user_id, user_profile="3x a week", system_prompt=None)
    generated, profiled = events_for(request_id, user_id, names)
    persister = PostgresPlanStore(pool)
    await persister.store_plan(generated)
    outcome = None
    for event in profiled:
        outcome = await persister.store_profile(event)
    assert isinstance(outcome, Completion), outcome
    return request_id, outcome.plan_id


async def request_to_failure(pool: asyncpg.Pool, user_id: uuid.UUID, reason: str) -> uuid.UUID:
    """A request accepted by the gateway's store that the persister marks failed."""
    publisher = RecordingPublisher()
    gateway = PlanRequests(PostgresRequests(pool), publisher, publisher, Quotas(max_active=10, max_per_day=100))
    request_id = await gateway.create_request(user_id=user_id, user_profile="3x a week", system_prompt=None)
    await PostgresPlanStore(pool).mark_failed(PlanFailed(request_id=request_id, stage="planner", reason=reason))
    return request_id
