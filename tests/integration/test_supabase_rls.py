"""On a database prepared as Supabase prepares its own (tests/supabase_like.sql), the original app
reads its requests and plans the way PostgREST and pg_graphql run its queries: a signed-in user
finds their request by ``request_id``, ``completed`` with its ``workout_plan_id`` once our real
gateway and persister code completed it, never another user's rows; ``anon`` reads nothing; and no
API role writes a request."""

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest

from services.persister.postgres import create_pool
from tests.integration.seeding import fresh_names
from tests.supabase_like import (
    APP_ENTRIES,
    APP_PLAN,
    APP_REQUESTS,
    SHARED_TABLES,
    SUPABASE_LIKE,
    add_auth_user,
    as_api_role,
    new_database,
    request_to_completion,
    request_to_failure,
    run_migrations,
)

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class User:
    id: uuid.UUID
    completed: uuid.UUID  # request id
    plan: uuid.UUID
    failed: uuid.UUID  # request id
    only_theirs: str  # an exercise in this user's plan alone


@dataclass(frozen=True)
class Supabase:
    url: str
    a: User
    b: User
    shared: str  # an exercise in both users' plans


@pytest.fixture(scope="module")
async def supabase(database_url: str) -> AsyncIterator[Supabase]:
    async with new_database(database_url, SUPABASE_LIKE) as url:
        await run_migrations(url)
        shared, a_only, b_only = fresh_names(3)
        pool = await create_pool(url, 1, 4)
        try:
            users = []
            for own in (a_only, b_only):
                user_id = uuid.uuid4()
                async with pool.acquire() as conn:
                    await add_auth_user(conn, user_id)
                failed = await request_to_failure(pool, user_id, "invalid_llm_reply")
                completed, plan = await request_to_completion(pool, user_id, [shared, own])
                users.append(User(user_id, completed, plan, failed, own))
        finally:
            await pool.close()
        yield Supabase(url, users[0], users[1], shared)


@pytest.fixture
async def conn(supabase: Supabase) -> AsyncIterator[asyncpg.Connection]:
    # Supabase's Data API logs in as `authenticator` and switches role per request.
    url = supabase.url.replace("postgresql://postgres@", "postgresql://authenticator@")
    connection = await asyncpg.connect(url)
    yield connection
    await connection.close()


async def test_the_app_finds_its_request_completed_with_the_plan_it_then_reads(
    supabase: Supabase, conn: asyncpg.Connection
) -> None:
    a = supabase.a
    async with as_api_role(conn, "authenticated", a.id):
        requests = await conn.fetch(APP_REQUESTS, a.id)
        current = next(r for r in requests if r["request_id"] == a.completed)  # the app's requests.find(...)
        plan = await conn.fetchrow(APP_PLAN, current["workout_plan_id"])
        entries = await conn.fetch(APP_ENTRIES, current["workout_plan_id"])
    assert [r["request_id"] for r in requests] == [a.completed, a.failed]  # newest first
    assert (current["status"], current["workout_plan_id"], current["error_message"]) == ("completed", a.plan, None)
    assert current["id"] == a.completed and current["completed_at"] is not None
    failed = requests[1]
    assert (failed["status"], failed["workout_plan_id"]) == ("failed", None)
    assert failed["error_message"] == "invalid_llm_reply"
    assert plan is not None and plan["status"] == "active" and plan["summary"]
    assert entries and {e["exercise_name"] for e in entries} == {supabase.shared, a.only_theirs}
    assert all(e["exercise_instructions"] and e["exercise_required_equipment"] is not None for e in entries)
    assert all(e["week_number"] in range(1, 9) and e["day"] and e["date"] and e["day_name"] for e in entries)


async def readable(conn: asyncpg.Connection) -> dict[str, int]:
    return {table: await conn.fetchval(f"SELECT count(*) FROM {table}") for table in SHARED_TABLES}  # noqa: S608


async def test_a_user_never_reads_another_users_rows(supabase: Supabase, conn: asyncpg.Connection) -> None:
    a, b = supabase.a, supabase.b
    async with as_api_role(conn, "authenticated", a.id):
        bs_requests = await conn.fetch(APP_REQUESTS, b.id)
        bs_plan = await conn.fetchrow(APP_PLAN, b.plan)
        bs_entries = await conn.fetch(APP_ENTRIES, b.plan)
        users = {r["user_id"] for r in await conn.fetch("SELECT user_id FROM workout_plan_requests")}
        plan_users = {r["user_id"] for r in await conn.fetch("SELECT user_id FROM workout_plans")}
        names = {r["name"] for r in await conn.fetch("SELECT name FROM exercises")}
    assert (bs_requests, bs_plan, bs_entries) == ([], None, [])
    assert users == plan_users == {a.id}
    assert names == {supabase.shared, a.only_theirs}  # b's own exercise stays b's


@pytest.mark.parametrize("claims_user", [None, "a"])
async def test_anon_reads_nothing(supabase: Supabase, conn: asyncpg.Connection, claims_user: str | None) -> None:
    # Also with a user's id in the claims: only the role `authenticated` has a policy.
    async with as_api_role(conn, "anon", supabase.a.id if claims_user else None):
        counts = await readable(conn)
        requests = await conn.fetch(APP_REQUESTS, supabase.a.id)
    assert counts == dict.fromkeys(SHARED_TABLES, 0)
    assert requests == []


async def test_a_signed_in_role_without_a_user_reads_nothing(supabase: Supabase, conn: asyncpg.Connection) -> None:
    async with as_api_role(conn, "authenticated"):
        assert await readable(conn) == dict.fromkeys(SHARED_TABLES, 0)


@pytest.mark.parametrize("role", ["anon", "authenticated"])
@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO workout_plan_requests (id, user_id, user_profile) VALUES (gen_random_uuid(), $1, 'forged')",
        "UPDATE workout_plan_requests SET status = 'processing' WHERE user_id = $1",
        "DELETE FROM workout_plan_requests WHERE user_id = $1",
    ],
)
async def test_no_api_role_writes_a_request(
    supabase: Supabase, conn: asyncpg.Connection, role: str, statement: str
) -> None:
    # A 'processing' row is work: the sweeper would re-drive a forged one and pay for its LLM calls.
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        async with as_api_role(conn, role, supabase.a.id):
            await conn.execute(statement, supabase.a.id)


async def test_security_is_on_for_the_four_tables_and_the_requests_go_to_realtime_in_full(supabase: Supabase) -> None:
    conn = await asyncpg.connect(supabase.url)
    try:
        security = await conn.fetch(
            "SELECT relname, relrowsecurity, relforcerowsecurity, relreplident FROM pg_class"
            " WHERE relname = ANY($1) AND relnamespace = 'public'::regnamespace",
            list(SHARED_TABLES),
        )
        published = await conn.fetch(
            "SELECT schemaname, tablename FROM pg_publication_tables WHERE pubname = 'supabase_realtime'"
        )
        policies = await conn.fetch(
            "SELECT tablename, policyname, cmd, roles FROM pg_policies WHERE schemaname = 'public'"
        )
    finally:
        await conn.close()
    assert {r["relname"]: (r["relrowsecurity"], r["relforcerowsecurity"]) for r in security} == dict.fromkeys(
        SHARED_TABLES, (True, False)
    )
    # FULL: an UPDATE carries the old row as well as the new one, user_id (the app's filter) in both.
    assert {r["relname"]: r["relreplident"] for r in security}["workout_plan_requests"] == b"f"
    assert [tuple(r) for r in published] == [("public", "workout_plan_requests")]
    assert sorted((r["tablename"], r["policyname"], r["cmd"], list(r["roles"])) for r in policies) == sorted(
        (table, "read_own_rows", "SELECT", ["authenticated"]) for table in SHARED_TABLES
    )


async def test_on_plain_postgres_the_shared_tables_have_no_policies(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        policies = await conn.fetchval("SELECT count(*) FROM pg_policies WHERE schemaname = 'public'")
        secured = await conn.fetchval(
            "SELECT count(*) FROM pg_class WHERE relname = ANY($1) AND relrowsecurity", list(SHARED_TABLES)
        )
    finally:
        await conn.close()
    assert (policies, secured) == (0, 0)


async def test_an_auth_schema_without_auth_uid_stops_the_migration(database_url: str) -> None:
    async with new_database(database_url) as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute("CREATE SCHEMA auth")
        finally:
            await conn.close()
        with pytest.raises(RuntimeError, match=r"auth\.uid"):
            await run_migrations(url)
