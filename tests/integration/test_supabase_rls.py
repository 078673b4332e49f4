"""Migration 0003 against a real Postgres: on a Supabase stand-in a user reads only their own rows and
the requests table is published to Realtime; on plain Postgres the migration changes nothing."""

import asyncio
import json
import os
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import pytest

from services.persister.migrations import MIGRATIONS_DIR

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
MIGRATION = MIGRATIONS_DIR / "0003_supabase_rls.sql"
TABLES = ("workout_plan_requests", "workout_plans", "workout_entries", "exercises")

# What a Supabase database has before our migrations run, as far as they rely on it. auth.uid() is
# Supabase's own definition; the role `authenticated` is cluster-wide, so it is made by a fixture.
SUPABASE_STAND_IN = """
CREATE SCHEMA auth;
GRANT USAGE ON SCHEMA auth TO authenticated;
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS $$
    select nullif(
        coalesce(
            current_setting('request.jwt.claim.sub', true),
            (current_setting('request.jwt.claims', true)::jsonb ->> 'sub')
        ),
        ''
    )::uuid
$$;
CREATE PUBLICATION supabase_realtime;
"""

SHARED_EXERCISE = "shared-goblet-squat"  # in both users' plans
UNUSED_EXERCISE = "unused-farmer-carry"  # in the catalogue, in nobody's plan


@dataclass(frozen=True)
class User:
    """One user's rows: a request, its plan, and two entries (an exercise of their own and the shared one)."""

    id: uuid.UUID
    request_id: uuid.UUID
    plan_id: uuid.UUID
    exercise_key: str

    @classmethod
    def new(cls, name: str) -> "User":
        return cls(uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), f"{name}-only-press")

    def rows(self) -> dict[str, set[object]]:
        """What this user should read, table by table."""
        return {
            "workout_plan_requests": {self.request_id},
            "workout_plans": {self.plan_id},
            "workout_entries": {(self.plan_id, self.exercise_key), (self.plan_id, SHARED_EXERCISE)},
            "exercises": {self.exercise_key, SHARED_EXERCISE},
        }


@dataclass(frozen=True)
class SupabaseDatabase:
    url: str
    a: User
    b: User


NOTHING: dict[str, set[object]] = {table: set() for table in TABLES}


async def migrate(url: str) -> tuple[int, str]:
    """Run the real migration command, as `make run` and a deployment do; return its exit code and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.persister",
        "migrate",
        cwd=REPO_ROOT,
        env={**os.environ, "DATABASE_URL": url},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, output.decode()


@asynccontextmanager
async def fresh_database(server_url: str, setup_sql: str) -> AsyncIterator[str]:
    """A new database on the session's server, prepared with ``setup_sql``, dropped afterwards."""
    name = f"rls_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f"CREATE DATABASE {name}")
        url = urlsplit(server_url)._replace(path=f"/{name}").geturl()
        try:
            conn = await asyncpg.connect(url)
            try:
                await conn.execute(setup_sql)
            finally:
                await conn.close()
            yield url
        finally:
            # FORCE: a failed test may have left a connection open.
            await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
    finally:
        await admin.close()


async def seed(conn: asyncpg.Connection, user: User) -> None:
    await conn.execute(
        "INSERT INTO workout_plan_requests (id, user_id, user_profile) VALUES ($1, $2, 'test')",
        user.request_id,
        user.id,
    )
    await conn.execute(
        "INSERT INTO workout_plans (id, request_id, user_id, title, summary, model)"
        " VALUES ($1, $2, $3, 'Plan', 'Summary', 'test')",
        user.plan_id,
        user.request_id,
        user.id,
    )
    await conn.execute("INSERT INTO exercises (key, name) VALUES ($1, $1) ON CONFLICT DO NOTHING", user.exercise_key)
    for position, key in enumerate([user.exercise_key, SHARED_EXERCISE], start=1):
        await conn.execute(
            "INSERT INTO workout_entries (plan_id, week, day, position, week_theme, day_focus,"
            " exercise_key, exercise_name, sets, reps, rest_seconds)"
            " VALUES ($1, 1, 1, $2, 'Base', 'Legs', $3, $3, 3, '8-10', 90)",
            user.plan_id,
            position,
            key,
        )


@pytest.fixture(scope="module")
async def authenticated_role(database_url: str) -> AsyncIterator[None]:
    """Supabase's role for signed-in users; made (and later dropped) only when the server lacks it."""
    admin = await asyncpg.connect(database_url)
    try:
        created = False
        if await admin.fetchval("SELECT to_regrole('authenticated') IS NULL"):
            await admin.execute("CREATE ROLE authenticated NOLOGIN")
            created = True
        yield
        if created:
            await admin.execute("DROP ROLE authenticated")
    finally:
        await admin.close()


@pytest.fixture(scope="module")
async def supabase(database_url: str, authenticated_role: None) -> AsyncIterator[SupabaseDatabase]:
    """A database that looks like Supabase's, migrated by the real command and seeded for users A and B."""
    async with fresh_database(database_url, SUPABASE_STAND_IN) as url:
        code, output = await migrate(url)
        assert code == 0, output
        a, b = User.new("a"), User.new("b")
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(
                "INSERT INTO exercises (key, name) VALUES ($1, $1), ($2, $2)", SHARED_EXERCISE, UNUSED_EXERCISE
            )
            await seed(conn, a)
            await seed(conn, b)
        finally:
            await conn.close()
        yield SupabaseDatabase(url, a, b)


@asynccontextmanager
async def signed_in(url: str, claims: dict[str, str] | None) -> AsyncIterator[asyncpg.Connection]:
    """A connection acting as Supabase's API does for a request: role `authenticated`, the token's claims.

    Everything is rolled back afterwards, so a test may also change grants inside it.
    """
    conn = await asyncpg.connect(url)
    try:
        transaction = conn.transaction()
        await transaction.start()
        try:
            await conn.execute("SET LOCAL ROLE authenticated")
            if claims is not None:
                await conn.execute("SELECT set_config('request.jwt.claims', $1, true)", json.dumps(claims))
            yield conn
        finally:
            await transaction.rollback()
    finally:
        await conn.close()


def claims_of(user: User) -> dict[str, str]:
    return {"sub": str(user.id), "role": "authenticated"}


async def readable(conn: asyncpg.Connection) -> dict[str, set[object]]:
    return {
        "workout_plan_requests": {r["id"] for r in await conn.fetch("SELECT id FROM workout_plan_requests")},
        "workout_plans": {r["id"] for r in await conn.fetch("SELECT id FROM workout_plans")},
        "workout_entries": {
            (r["plan_id"], r["exercise_key"])
            for r in await conn.fetch("SELECT plan_id, exercise_key FROM workout_entries")
        },
        "exercises": {r["key"] for r in await conn.fetch("SELECT key FROM exercises")},
    }


@pytest.mark.parametrize("who", ["a", "b"])
async def test_each_user_reads_only_their_own_rows_in_all_four_tables(supabase: SupabaseDatabase, who: str) -> None:
    user, other = (supabase.a, supabase.b) if who == "a" else (supabase.b, supabase.a)

    async with signed_in(supabase.url, claims_of(user)) as conn:
        rows = await readable(conn)

    assert rows == user.rows()
    # Spelled out: nothing of the other user's, and no catalogue entry outside the user's own plans.
    theirs = other.rows()
    for table in ("workout_plan_requests", "workout_plans", "workout_entries"):
        assert rows[table].isdisjoint(theirs[table]), table
    assert rows["exercises"].isdisjoint({other.exercise_key, UNUSED_EXERCISE})


async def test_a_signed_in_role_without_claims_reads_nothing(supabase: SupabaseDatabase) -> None:
    async with signed_in(supabase.url, claims=None) as conn:
        assert await readable(conn) == NOTHING


async def test_a_user_cannot_write_even_with_supabases_default_grants(supabase: SupabaseDatabase) -> None:
    a = supabase.a
    async with signed_in(supabase.url, claims_of(a)) as conn:
        # Supabase's default privileges grant every command on new tables to `authenticated`.
        await conn.execute("RESET ROLE")
        await conn.execute(f"GRANT INSERT, UPDATE, DELETE ON {', '.join(TABLES)} TO authenticated")
        await conn.execute("SET LOCAL ROLE authenticated")

        updated = await conn.execute(
            "UPDATE workout_plan_requests SET status = 'cancelled' WHERE id = $1", a.request_id
        )
        deleted = await conn.execute("DELETE FROM workout_entries WHERE plan_id = $1", a.plan_id)
        assert (updated, deleted) == ("UPDATE 0", "DELETE 0")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await conn.execute("INSERT INTO exercises (key, name) VALUES ('mine', 'Mine')")


async def test_row_security_is_enabled_on_all_four_tables_but_not_forced_on_their_owner(
    supabase: SupabaseDatabase,
) -> None:
    # Not forced: the services connect as the owner and must keep reading and writing every row.
    conn = await asyncpg.connect(supabase.url)
    try:
        flags = await conn.fetch(
            "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class WHERE relname = ANY($1::text[])",
            list(TABLES),
        )
    finally:
        await conn.close()
    assert sorted(tuple(f) for f in flags) == sorted((table, True, False) for table in TABLES)


async def test_the_requests_table_alone_is_published_to_realtime(supabase: SupabaseDatabase) -> None:
    conn = await asyncpg.connect(supabase.url)
    try:
        published = await conn.fetch("SELECT tablename FROM pg_publication_tables WHERE pubname = 'supabase_realtime'")
    finally:
        await conn.close()
    assert [r["tablename"] for r in published] == ["workout_plan_requests"]


async def test_running_the_migration_again_leaves_one_policy_per_table(supabase: SupabaseDatabase) -> None:
    conn = await asyncpg.connect(supabase.url)
    # Rolled back, so the other tests see the database as the migration command left it.
    transaction = conn.transaction()
    await transaction.start()
    try:
        await conn.execute(MIGRATION.read_text())
        await conn.execute(MIGRATION.read_text())
        policies = await conn.fetch(
            "SELECT tablename, policyname, cmd, roles FROM pg_policies WHERE tablename = ANY($1::text[])",
            list(TABLES),
        )
        published = await conn.fetchval(
            "SELECT count(*) FROM pg_publication_tables WHERE pubname = 'supabase_realtime'"
        )
    finally:
        await transaction.rollback()
        await conn.close()
    assert sorted((p["tablename"], p["policyname"], p["cmd"], p["roles"]) for p in policies) == sorted(
        (table, "read_own_rows", "SELECT", ["authenticated"]) for table in TABLES
    )
    assert published == 1


async def test_on_plain_postgres_the_migration_is_recorded_and_changes_nothing(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT to_regnamespace('auth')") is None
        applied = await conn.fetchval("SELECT count(*) FROM schema_migrations WHERE version = $1", MIGRATION.stem)
        secured = await conn.fetch(
            "SELECT relname FROM pg_class WHERE relrowsecurity AND relname = ANY($1::text[])", list(TABLES)
        )
        policies = await conn.fetchval(
            "SELECT count(*) FROM pg_policies WHERE tablename = ANY($1::text[])", list(TABLES)
        )
    finally:
        await conn.close()
    assert applied == 1
    assert secured == []
    assert policies == 0


async def test_an_auth_schema_without_auth_uid_stops_the_migration(database_url: str) -> None:
    async with fresh_database(database_url, "CREATE SCHEMA auth") as url:
        code, output = await migrate(url)

        assert code != 0
        assert "auth.uid() does not" in output
        conn = await asyncpg.connect(url)
        try:
            applied = [r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations ORDER BY 1")]
            secured = await conn.fetchval("SELECT count(*) FROM pg_class WHERE relrowsecurity")
        finally:
            await conn.close()
        assert MIGRATION.stem not in applied
        assert secured == 0
