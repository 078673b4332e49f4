"""The cost ledger written in groups: each call once, each request's total the sum of its calls."""

import asyncio
import uuid
from decimal import Decimal

import asyncpg
import pytest

from contracts.events import LlmCallRecorded
from services.persister.ledger import PostgresLedger
from tests.integration.seeding import new_request

pytestmark = pytest.mark.integration


def call(request_id: uuid.UUID, cost: float, call_id: uuid.UUID | None = None) -> LlmCallRecorded:
    return LlmCallRecorded(
        request_id=request_id,
        call_id=call_id or uuid.uuid4(),
        stage="planner",
        model="gpt-4o-mini",
        outcome="ok",
        prompt_tokens=100,
        completion_tokens=50,
        cost_usd=cost,
    )


async def test_calls_recorded_together_are_stored_once_and_summed_per_request(pool: asyncpg.Pool) -> None:
    (first, _), (second, _) = await new_request(pool), await new_request(pool)
    calls = [call(first, 0.001) for _ in range(9)] + [call(second, 0.002) for _ in range(5)]
    repeated = calls[0]  # a redelivery, in the same group and in a later one
    ledger = PostgresLedger(pool)
    await asyncio.gather(*(ledger.record(c) for c in [*calls, repeated]))
    await ledger.record(repeated)

    async with pool.acquire() as conn:
        stored = await conn.fetchval(
            "SELECT count(*) FROM llm_calls WHERE request_id = ANY($1::uuid[])", [first, second]
        )
        totals = dict(
            await conn.fetch(
                "SELECT id, cost_usd FROM workout_plan_requests WHERE id = ANY($1::uuid[])", [first, second]
            )
        )
    assert stored == len(calls)
    assert totals == {first: Decimal("0.009"), second: Decimal("0.010")}


async def test_two_ledgers_writing_overlapping_groups_at_once_neither_deadlock_nor_lose_a_call(
    pool: asyncpg.Pool,
) -> None:
    # Two replicas, each with groups touching the same requests in different orders.
    requests = [(await new_request(pool))[0] for _ in range(6)]
    calls = [call(r, 0.001) for _ in range(20) for r in requests]
    one, other = PostgresLedger(pool), PostgresLedger(pool)
    async with asyncio.timeout(30):
        await asyncio.gather(*(one.record(c) for c in calls[::2]), *(other.record(c) for c in reversed(calls[1::2])))
    async with pool.acquire() as conn:
        totals = await conn.fetch("SELECT cost_usd FROM workout_plan_requests WHERE id = ANY($1::uuid[])", requests)
    assert [t["cost_usd"] for t in totals] == [Decimal("0.020")] * len(requests)
