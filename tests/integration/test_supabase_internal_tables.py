"""Our internal tables (the outbox, the cost ledger, the migrations' record, and any a later
migration adds) are closed to Supabase's API roles, although Supabase's default privileges grant
those roles everything on every new table: a row forged into ``outbox`` would be published as a
real event and start paid LLM work."""

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from tests.supabase_like import SHARED_TABLES, SUPABASE_LIKE, as_api_role, new_database, run_migrations

pytestmark = pytest.mark.integration

API_ROLES = ("anon", "authenticated")


@pytest.fixture(scope="module")
async def supabase(database_url: str) -> AsyncIterator[str]:
    async with new_database(database_url, SUPABASE_LIKE) as url:
        await run_migrations(url)
        yield url


@pytest.fixture(scope="module")
async def internal_tables(supabase: str) -> dict[str, str]:
    """Every table our migrations made besides the four the original app shares with us, with one
    of its columns."""
    conn = await asyncpg.connect(supabase)
    try:
        rows = await conn.fetch(
            "SELECT c.relname, (SELECT attname FROM pg_attribute WHERE attrelid = c.oid AND attnum > 0"
            "  AND NOT attisdropped AND attidentity = '' ORDER BY attnum LIMIT 1) AS first"
            " FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r'"
            " AND NOT c.relname = ANY($1) ORDER BY c.relname",
            list(SHARED_TABLES),
        )
    finally:
        await conn.close()
    tables = {r["relname"]: r["first"] for r in rows}
    assert {"outbox", "llm_calls", "schema_migrations"} <= set(tables)
    return tables


def statements(table: str, column: str) -> list[str]:
    return [
        # Our own table and column names, from the catalogue.
        f"SELECT * FROM {table}",  # noqa: S608
        f"INSERT INTO {table} DEFAULT VALUES",
        f"UPDATE {table} SET {column} = {column}",  # noqa: S608
        f"DELETE FROM {table}",  # noqa: S608
    ]


@pytest.mark.parametrize("role", API_ROLES)
async def test_the_api_roles_are_refused_every_command_on_every_internal_table(
    supabase: str, internal_tables: dict[str, str], role: str
) -> None:
    conn = await asyncpg.connect(supabase)
    try:
        for table, column in internal_tables.items():
            for statement in statements(table, column):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    async with as_api_role(conn, role):
                        await conn.execute(statement)
    finally:
        await conn.close()


async def test_privileges_granted_later_still_open_no_internal_row(
    supabase: str, internal_tables: dict[str, str]
) -> None:
    conn = await asyncpg.connect(supabase)
    try:
        await conn.execute("INSERT INTO outbox (subject, payload) VALUES ('plan.requested', '{}')")
        # What a careless "fix" on a Supabase project might do; row-level security still holds.
        await conn.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO anon, authenticated")
        await conn.execute("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO anon, authenticated")
        try:
            for role in API_ROLES:
                for table in internal_tables:
                    async with as_api_role(conn, role):
                        assert await conn.fetchval(f"SELECT count(*) FROM {table}") == 0  # noqa: S608
                        assert await conn.execute(f"DELETE FROM {table}") == "DELETE 0"  # noqa: S608
                with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
                    async with as_api_role(conn, role):
                        await conn.execute("INSERT INTO outbox (subject, payload) VALUES ('plan.requested', '{}')")
        finally:
            await run_migrations(supabase)  # and the next migration run takes the grants back
        assert await conn.fetchval("SELECT count(*) FROM outbox") == 1
        granted = await conn.fetchval(
            "SELECT count(*) FROM information_schema.role_table_grants"
            " WHERE grantee IN ('anon', 'authenticated') AND table_name = ANY($1)",
            list(internal_tables),
        )
    finally:
        await conn.close()
    assert granted == 0


@pytest.mark.parametrize("role", API_ROLES)
async def test_the_api_roles_cannot_draw_from_our_sequences(supabase: str, role: str) -> None:
    conn = await asyncpg.connect(supabase)
    try:
        sequences = await conn.fetch(
            "SELECT c.oid::regclass::text AS name FROM pg_class c"
            " WHERE c.relkind = 'S' AND c.relnamespace = 'public'::regnamespace"
        )
        assert sequences
        for sequence in sequences:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with as_api_role(conn, role):
                    await conn.fetchval("SELECT nextval($1::regclass)", sequence["name"])
    finally:
        await conn.close()


ACCEPT_STEPS = {
    "accept_plan_request": "SELECT * FROM accept_plan_request($1, $2, 'lift', NULL, NULL, 3, 20, NULL, NULL, 0.02,"
    " 'plan.requested', '{}', NULL)",
    "accept_plan_requests": "SELECT * FROM accept_plan_requests(ARRAY[$1::uuid], ARRAY[$2::uuid], ARRAY['lift'],"
    " ARRAY[NULL], ARRAY[NULL], ARRAY['{}'], ARRAY[NULL], 3, 20, NULL, NULL, 0.02, 'plan.requested')",
    "accept_week_request": "SELECT * FROM accept_week_request($1, $2, $1, 1::smallint, NULL, NULL, 3, 20, NULL, NULL,"
    " 0.02, 'plan.week.requested', '{}', NULL)",
}


@pytest.mark.parametrize("step", sorted(ACCEPT_STEPS))
@pytest.mark.parametrize("role", API_ROLES)
async def test_the_api_roles_cannot_call_the_gateways_accept_step(supabase: str, role: str, step: str) -> None:
    # Through PostgREST's /rpc a callable accept step would write a request and its outbox row:
    # paid LLM work started from the API.
    conn = await asyncpg.connect(supabase)
    try:
        staged = await conn.fetchval("SELECT count(*) FROM outbox")
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match=step):
            async with as_api_role(conn, role, uuid.uuid4()):
                await conn.fetch(ACCEPT_STEPS[step], uuid.uuid4(), uuid.uuid4())
        assert await conn.fetchval("SELECT count(*) FROM outbox") == staged
    finally:
        await conn.close()
