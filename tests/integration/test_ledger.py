"""The cost ledger written in groups: each call once, each request's total the sum of its calls."""

import asyncio
import uuid
from decimal import Decimal

import asyncpg
import pytest

from contracts.events import LlmCallRecorded
from services.persister.ledger import PostgresLedger
from services.persister.postgres import PostgresPlanStore
from tests.integration.seeding import events_for, fresh_names, new_request

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


async def test_a_plans_calls_are_stored_with_it_once_even_beside_their_own_events_and_when_it_is_dropped(
    pool: asyncpg.Pool,
) -> None:
    store, ledger = PostgresPlanStore(pool), PostgresLedger(pool)
    (kept_request, user), (cancelled_request, other_user) = await new_request(pool), await new_request(pool)
    await pool.execute("UPDATE workout_plan_requests SET status = 'cancelled' WHERE id = $1", cancelled_request)
    plans = []
    for request_id, user_id in ((kept_request, user), (cancelled_request, other_user)):
        generated, _ = events_for(request_id, user_id, fresh_names(2))
        plans.append(generated.model_copy(update={"calls": tuple(call(request_id, 0.001) for _ in range(9))}))
    # A failed delivery had published three of the first plan's records on their own, and they
    # arrive at the same time as the plan that carries them again.
    await asyncio.gather(*(store.store_plan(p) for p in plans), *(ledger.record(c) for c in plans[0].calls[:3]))
    await store.store_plan(plans[0])  # a redelivery

    async with pool.acquire() as conn:
        for request_id in (kept_request, cancelled_request):
            assert await conn.fetchval("SELECT count(*) FROM llm_calls WHERE request_id = $1", request_id) == 9
            cost = await conn.fetchval("SELECT cost_usd FROM workout_plan_requests WHERE id = $1", request_id)
            assert cost == Decimal("0.009")
        # The cancelled request stored no plan, but its calls were paid: they are on the ledger.
        assert await conn.fetchval("SELECT count(*) FROM workout_plans WHERE request_id = $1", cancelled_request) == 0
