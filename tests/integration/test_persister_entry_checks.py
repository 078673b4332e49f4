"""The persister's entries skip the per-row checks their own transaction makes redundant, and only
those: what they write is what the checked path writes, anything the table holds beyond what the
persister knows still runs, and the exercises they name cannot go while they are written."""

import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from urllib.parse import urlsplit

import asyncpg
import pytest
from asyncpg.pool import PoolConnectionProxy

from services.persister.completion import missing_profiles_of
from services.persister.locks import lock_request
from services.persister.plan_rows import insert_plan, may_skip_row_checks
from services.persister.plans import Completion
from services.persister.postgres import PostgresPlanStore
from tests.integration.seeding import events_for, fresh_names, new_request

pytestmark = pytest.mark.integration

# Every column of an entry but the ones that differ between two plans' rows by nature.
_ENTRY = """
SELECT week, day_of_week, position, week_theme, day_focus, exercise_key, exercise_name, sets, reps, rest_seconds,
       notes, workout_plan_id = plan_id AS same_plan, week_number, day_name, day::text, date, exercise_id, weight,
       time, equipment, streak_exercise_id, streak_exercise_notes, is_adjusted, adjustment_reason, preset_id,
       id IS NOT NULL AS has_id, created_at IS NOT NULL AS has_created_at, updated_at IS NOT NULL AS has_updated_at
FROM workout_entries WHERE plan_id = $1 ORDER BY week, day_of_week, position
"""


async def _plans_index_scans(conn: PoolConnectionProxy, write: Awaitable[object]) -> int:
    """Index scans of ``workout_plans`` that ``write`` made in this transaction: one per entry row
    when the foreign key to the plan is checked row by row."""
    scans = "SELECT coalesce(sum(idx_scan), 0) FROM pg_stat_xact_user_tables WHERE relname = 'workout_plans'"
    before = await conn.fetchval(scans)
    await write
    return int(await conn.fetchval(scans) - before)


async def test_entries_written_without_row_checks_are_the_entries_the_checked_path_writes(
    pool: asyncpg.Pool,
) -> None:
    names = fresh_names(3)
    plans = []
    for skip in (False, True):
        request_id, user_id = await new_request(pool)
        generated, _ = events_for(request_id, user_id, names)
        async with pool.acquire() as conn, conn.transaction():
            await lock_request(conn, request_id)
            plans.append(await insert_plan(conn, generated, skip_row_checks=skip))
    checked, skipped = [[dict(row) for row in await pool.fetch(_ENTRY, plan_id)] for plan_id in plans]
    assert len(skipped) == 8 * 3 * 3
    assert skipped == checked
    assert all(row["same_plan"] and row["has_id"] and row["exercise_id"] is not None for row in skipped)


async def test_the_persisters_entries_skip_the_foreign_key_checks_their_transaction_makes_redundant(
    pool: asyncpg.Pool,
) -> None:
    names = fresh_names(2)
    scans = {}
    async with pool.acquire() as conn:
        assert await may_skip_row_checks(conn)  # the tests' server runs us as a superuser
        for skip in (False, True):
            request_id, user_id = await new_request(pool)
            generated, _ = events_for(request_id, user_id, names)
            async with conn.transaction():
                scans[skip] = await _plans_index_scans(conn, insert_plan(conn, generated, skip_row_checks=skip))
        # Back to checking every row once the COPY is done: the rest of the transaction is as before.
        assert await conn.fetchval("SELECT current_setting('session_replication_role')") == "origin"
    assert scans == {False: 8 * 3 * 2, True: 0}


@asynccontextmanager
async def _rolled_back(pool: asyncpg.Pool) -> AsyncIterator[PoolConnectionProxy]:
    """A connection in a transaction that leaves nothing behind (the schema changes in it too)."""
    async with pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            yield conn
        finally:
            await transaction.rollback()


async def test_a_trigger_the_persister_does_not_know_still_runs_for_its_entries(pool: asyncpg.Pool) -> None:
    # Say the original app, or a Supabase webhook, has its own trigger on the table.
    request_id, user_id = await new_request(pool)
    generated, _ = events_for(request_id, user_id, fresh_names(2))
    async with _rolled_back(pool) as conn:
        await conn.execute(
            "CREATE FUNCTION pg_temp.refuse() RETURNS trigger LANGUAGE plpgsql AS"
            " $$BEGIN RAISE EXCEPTION 'the other trigger ran'; END$$;"
            " CREATE TRIGGER someone_elses AFTER INSERT ON workout_entries"
            " FOR EACH ROW EXECUTE FUNCTION pg_temp.refuse()"
        )
        with pytest.raises(asyncpg.RaiseError, match="the other trigger ran"):
            await insert_plan(conn, generated, skip_row_checks=True)


async def test_a_foreign_key_the_persister_does_not_know_is_still_checked_for_its_entries(pool: asyncpg.Pool) -> None:
    request_id, user_id = await new_request(pool)
    generated, _ = events_for(request_id, user_id, fresh_names(2))
    async with _rolled_back(pool) as conn:
        await conn.execute(
            "CREATE TABLE known_exercises (key text PRIMARY KEY);"
            " ALTER TABLE workout_entries ADD CONSTRAINT only_known_exercises"
            " FOREIGN KEY (exercise_key) REFERENCES known_exercises (key) NOT VALID"
        )
        with pytest.raises(asyncpg.ForeignKeyViolationError, match="only_known_exercises"):
            await insert_plan(conn, generated, skip_row_checks=True)


async def test_an_exercise_the_entries_name_cannot_be_deleted_while_they_are_written(pool: asyncpg.Pool) -> None:
    # What the skipped check would have done for exercise_id: hold the exercise (FOR KEY SHARE) till
    # the entries commit. Without it, a delete could commit meanwhile and leave the entries dangling.
    request_id, user_id = await new_request(pool)
    generated, _ = events_for(request_id, user_id, fresh_names(1))
    (exercise,) = generated.exercises
    await pool.execute("INSERT INTO exercises (key, name) VALUES ($1, $2)", exercise.key, exercise.name)
    async with pool.acquire() as conn, conn.transaction():
        await insert_plan(conn, generated, skip_row_checks=True)
        async with pool.acquire() as other:
            await other.execute("SET lock_timeout = '200ms'")
            with pytest.raises(asyncpg.LockNotAvailableError):
                await other.execute("DELETE FROM exercises WHERE key = $1", exercise.key)
            await other.execute("RESET lock_timeout")


async def test_a_plan_over_a_profiled_catalogue_is_complete_as_written(pool: asyncpg.Pool) -> None:
    store = PostgresPlanStore(pool)
    names = fresh_names(2)
    first_request = await new_request(pool)
    first, profiles = events_for(*first_request, names)
    await store.store_plan(first)
    for profile in profiles:
        await store.store_profile(profile)
    request_id, user_id = await new_request(pool)
    outcome = await store.store_plan(events_for(request_id, user_id, names)[0])
    assert isinstance(outcome, Completion)
    # The count its transaction did not make agrees, and so does every entry's equipment.
    async with pool.acquire() as conn:
        assert await missing_profiles_of(conn, [outcome.plan_id]) == {outcome.plan_id: (2, ())}
    assert not await pool.fetchval(
        "SELECT count(*) FROM workout_entries e JOIN exercises x ON x.id = e.exercise_id"
        " WHERE e.plan_id = $1 AND e.equipment IS DISTINCT FROM x.required_equipment",
        outcome.plan_id,
    )


async def test_a_role_that_may_not_skip_row_triggers_is_told_so(database_url: str) -> None:
    role = f"plain_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f"CREATE ROLE {role} LOGIN")
        url = urlsplit(database_url)
        plain = await asyncpg.connect(url._replace(netloc=f"{role}@{url.hostname}:{url.port}").geturl())
        try:
            assert not await may_skip_row_checks(plain)
        finally:
            await plain.close()
    finally:
        await admin.execute(f"DROP ROLE {role}")
        await admin.close()
