"""The daily budgets on a real Postgres (migrations 0022, 0023): the day's spend and reservations
refuse an accept that would pass the global budget; the sum is kept between accepts, each adding
its reserve, and made again from the requests once it is more than 5 seconds old. Both budgets are
compared at a millionth of a dollar, so reserves that do not add up exactly in binary still fill
a budget to its edge."""

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from contracts.events import PlanRequested
from service_runtime.ids import uuid7
from services.gateway.accepts import GroupedAccepts
from services.gateway.repository import Admission, Limits
from tests.databases import fresh_database

pytestmark = pytest.mark.integration

# Quarters add up exactly in binary floating point, so the edge of the budget is exact too.
LIMITS = Limits(max_active=100, max_per_day=100, user_budget_usd=None, global_budget_usd=1.0, reserve_usd=0.25)


@pytest.fixture
async def own_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A database of the test's own: the global sum counts every request of the day, anyone's."""
    async with fresh_database(database_url, "budget") as url:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
        try:
            yield pool
        finally:
            await pool.close()


async def accept(
    accepts: GroupedAccepts, limits: Limits = LIMITS, user_id: uuid.UUID | None = None
) -> tuple[Admission, uuid.UUID]:
    event = PlanRequested(request_id=uuid7(), user_id=user_id or uuid.uuid4(), user_profile="3x")
    return await accepts.accept(event, event.wire.decode(), None, limits), event.request_id


async def test_a_budget_is_filled_to_its_edge_by_reserves_binary_cannot_add_exactly(
    own_pool: asyncpg.Pool,
) -> None:
    accepts = GroupedAccepts(own_pool.acquire, writers=1, per_write=64)
    # In binary floating point 0.1 + 0.1 + 0.1 > 0.3 and fifty times 0.02 > 1.0.
    global_limits = Limits(
        max_active=100, max_per_day=100, user_budget_usd=None, global_budget_usd=0.3, reserve_usd=0.1
    )
    user_limits = Limits(max_active=100, max_per_day=100, user_budget_usd=1.0, global_budget_usd=None, reserve_usd=0.02)
    user_id = uuid.uuid4()

    global_outcomes = [(await accept(accepts, global_limits))[0].outcome for _ in range(4)]
    user_outcomes = [(await accept(accepts, user_limits, user_id))[0].outcome for _ in range(51)]

    assert global_outcomes == ["accepted"] * 3 + ["global_budget"]
    assert user_outcomes == ["accepted"] * 50 + ["user_budget"]


async def test_accepts_reserve_the_global_budget_until_it_is_spent(own_pool: asyncpg.Pool) -> None:
    accepts = GroupedAccepts(own_pool.acquire, writers=1, per_write=64)

    outcomes = [(await accept(accepts))[0] for _ in range(5)]

    # Four reserves of 0.25 fill the 1.0; the fifth would pass it, and nothing of it is stored.
    assert [a.outcome for a in outcomes] == ["accepted"] * 4 + ["global_budget"]
    assert outcomes[-1].spent_usd == 1.0
    assert await own_pool.fetchval("SELECT count(*) FROM workout_plan_requests") == 4
    assert await own_pool.fetchval("SELECT spent + reserved_since FROM global_spend") == 1.0


async def test_spend_past_the_reserves_counts_once_the_sum_is_made_again(own_pool: asyncpg.Pool) -> None:
    accepts = GroupedAccepts(own_pool.acquire, writers=1, per_write=64)
    first, request_id = await accept(accepts)
    assert first.outcome == "accepted"
    # The request spends far past its reserve (the persister records its calls' cost as they come).
    await own_pool.execute("UPDATE workout_plan_requests SET cost_usd = 0.9 WHERE id = $1", request_id)

    # Within 5 seconds of the sum, an accept sees the reserves made since, not that spend.
    second, _ = await accept(accepts)
    assert (second.outcome, second.spent_usd) == ("accepted", None)

    # Once the sum is older, the next accept makes it again from the requests: 0.9 + 0.25 spent.
    await own_pool.execute("UPDATE global_spend SET computed_at = computed_at - interval '6 seconds'")
    third, _ = await accept(accepts)
    assert third.outcome == "global_budget"
    assert third.spent_usd == pytest.approx(1.15)
