"""Grouped outbox confirmations against a real Postgres: every caller's row is gone when it returns."""

import asyncio

import asyncpg
import pytest

from services.gateway.outbox_confirmations import GroupedConfirmations

pytestmark = pytest.mark.integration


class CountingPool:
    """The real pool, counting the statements sent through ``execute``."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.statements = 0

    async def execute(self, query: str, *args: object) -> str:
        self.statements += 1
        result: str = await self.pool.execute(query, *args)
        return result


async def staged(pool: asyncpg.Pool, count: int) -> list[int]:
    rows = await pool.fetch(
        "INSERT INTO outbox (subject, payload) SELECT 'plan.requested', '{}' FROM generate_series(1, $1) RETURNING id",
        count,
    )
    return [row["id"] for row in rows]


async def test_concurrent_confirmations_share_deletes_and_each_row_is_gone_when_its_caller_returns(
    pool: asyncpg.Pool,
) -> None:
    ids = await staged(pool, 200)
    counting = CountingPool(pool)
    confirmations = GroupedConfirmations(counting)

    async def confirm(outbox_id: int) -> int:
        await confirmations.confirm(outbox_id)
        left: int = await pool.fetchval("SELECT count(*) FROM outbox WHERE id = $1", outbox_id)
        return left

    left = await asyncio.gather(*(confirm(outbox_id) for outbox_id in ids))

    assert left == [0] * len(ids)
    assert 1 <= counting.statements <= 10


async def test_a_confirmation_alone_is_deleted_at_once(pool: asyncpg.Pool) -> None:
    [outbox_id] = await staged(pool, 1)

    await GroupedConfirmations(pool).confirm(outbox_id)

    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE id = $1", outbox_id) == 0


async def test_a_failed_delete_reaches_every_caller_of_its_group(pool: asyncpg.Pool) -> None:
    class FailingPool:
        async def execute(self, query: str, *args: object) -> str:
            raise ConnectionResetError("the database went away")

    confirmations = GroupedConfirmations(FailingPool())

    outcomes = await asyncio.gather(*(confirmations.confirm(i) for i in range(5)), return_exceptions=True)

    assert all(isinstance(outcome, ConnectionResetError) for outcome in outcomes)
