"""Accepts written in groups against a real Postgres: each answered as if alone, one call per group."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest

from contracts.events import PlanRequested
from services.gateway.accepts import GroupedAccepts
from services.gateway.repository import Admission, Limits
from services.gateway.requests import Unavailable

pytestmark = pytest.mark.integration


@pytest.fixture
async def users(pool: asyncpg.Pool) -> AsyncIterator[list[uuid.UUID]]:
    """The users a test accepts requests for; their requests and outbox rows go afterwards, so the
    shared database is not left with dozens of ``processing`` requests for the sweeper's tests."""
    made: list[uuid.UUID] = []
    yield made
    await pool.execute("DELETE FROM outbox WHERE (payload::jsonb ->> 'user_id')::uuid = ANY($1::uuid[])", made)
    await pool.execute("DELETE FROM workout_plan_requests WHERE user_id = ANY($1::uuid[])", made)


LIMITS = Limits(max_active=3, max_per_day=20, user_budget_usd=None, global_budget_usd=None, reserve_usd=0.02)


class CountingConnections:
    """Connections from the real pool, counting the calls each group makes."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool
        self.calls = 0

    @asynccontextmanager
    async def __call__(self) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy]:
        self.calls += 1
        async with self.pool.acquire() as conn:
            yield conn


async def accept(accepts: GroupedAccepts, user_id: uuid.UUID, profile: str = "3x", key: str | None = None) -> Admission:
    event = PlanRequested(request_id=uuid.uuid4(), user_id=user_id, user_profile=profile)
    return await accepts.accept(event, event.wire.decode(), key, LIMITS)


async def test_accepts_arriving_together_share_one_call_and_each_is_checked_as_if_alone(
    pool: asyncpg.Pool, users: list[uuid.UUID]
) -> None:
    connections = CountingConnections(pool)
    accepts = GroupedAccepts(connections, writers=1, per_write=64)
    busy, keyed = uuid.uuid4(), uuid.uuid4()
    others = [uuid.uuid4() for _ in range(20)]
    users += [busy, keyed, *others]

    admissions = await asyncio.gather(
        *(accept(accepts, busy) for _ in range(5)),
        *(accept(accepts, keyed, key="same-key") for _ in range(2)),
        *(accept(accepts, user) for user in others),
    )

    # One user's five count against its cap one after the other: three in, two refused.
    assert [a.outcome for a in admissions[:5]] == ["accepted"] * 3 + ["active_cap"] * 2
    assert [a.active for a in admissions[3:5]] == [3, 3]
    # The key's second use finds the first's request, written in the same call.
    first, second = admissions[5:7]
    assert (first.outcome, second.outcome) == ("accepted", "existing")
    assert second.prior is not None and second.prior.status == "processing"
    assert all(a.outcome == "accepted" for a in admissions[7:])
    # Every accepted request and its outbox row are stored, nothing else.
    accepted = [a for a in admissions if a.outcome == "accepted"]
    ids = [a.outbox_id for a in accepted]
    assert len(set(ids)) == len(ids) == 3 + 1 + 20
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE id = ANY($1::bigint[])", ids) == len(ids)
    stored = await pool.fetchval(
        "SELECT count(*) FROM workout_plan_requests WHERE user_id = ANY($1::uuid[])", [busy, keyed, *others]
    )
    assert stored == len(ids)
    # Thirty-one accepts made far fewer calls: the first alone, the rest together.
    assert connections.calls <= 3


@pytest.mark.parametrize("linger_seconds", [0.0, 0.2])
async def test_accepts_arriving_one_at_a_time_share_a_call_while_a_small_group_lingers(
    pool: asyncpg.Pool, users: list[uuid.UUID], linger_seconds: float
) -> None:
    connections = CountingConnections(pool)
    accepts = GroupedAccepts(connections, writers=1, per_write=64, linger_seconds=linger_seconds)
    arriving = [uuid.uuid4() for _ in range(6)]
    users += arriving

    pending = []
    for user in arriving:
        pending.append(asyncio.ensure_future(accept(accepts, user)))
        await asyncio.sleep(0.01)  # each arrives after the one before was handed over
    admissions = await asyncio.gather(*pending)

    assert [a.outcome for a in admissions] == ["accepted"] * 6
    stored = await pool.fetchval("SELECT count(*) FROM workout_plan_requests WHERE user_id = ANY($1::uuid[])", arriving)
    assert stored == 6
    if linger_seconds:
        assert connections.calls == 1  # the first call waited for the other five
    else:
        assert connections.calls > 1  # a call starts as soon as one is due, and ends before the next arrives


async def test_an_accept_the_database_refuses_fails_alone_and_its_group_is_stored(
    pool: asyncpg.Pool, users: list[uuid.UUID]
) -> None:
    accepts = GroupedAccepts(CountingConnections(pool), writers=1, per_write=64)
    users += [uuid.uuid4() for _ in range(6)]

    # Postgres refuses a NUL in text (the gateway's intake refuses it first; here it reaches the call).
    outcomes = await asyncio.gather(
        *(accept(accepts, user, profile="lift\x00" if i == 3 else "lift") for i, user in enumerate(users)),
        return_exceptions=True,
    )

    assert isinstance(outcomes[3], asyncpg.PostgresError)
    assert all(isinstance(o, Admission) and o.outcome == "accepted" for i, o in enumerate(outcomes) if i != 3)
    stored = await pool.fetch("SELECT user_id FROM workout_plan_requests WHERE user_id = ANY($1::uuid[])", users)
    assert {row["user_id"] for row in stored} == set(users) - {users[3]}


async def test_an_outage_fails_every_accept_of_its_group_and_stores_nothing(pool: asyncpg.Pool) -> None:
    @asynccontextmanager
    async def away() -> AsyncIterator[asyncpg.pool.PoolConnectionProxy]:
        raise Unavailable("the database is not answering")
        yield  # pragma: no cover

    accepts = GroupedAccepts(away, writers=1, per_write=64)
    users = [uuid.uuid4() for _ in range(5)]

    outcomes = await asyncio.gather(*(accept(accepts, user) for user in users), return_exceptions=True)

    assert all(isinstance(outcome, Unavailable) for outcome in outcomes)
    assert await pool.fetchval("SELECT count(*) FROM workout_plan_requests WHERE user_id = ANY($1::uuid[])", users) == 0


async def test_two_calls_over_the_same_users_in_opposite_orders_do_not_deadlock(
    pool: asyncpg.Pool, users: list[uuid.UUID]
) -> None:
    users += [uuid.uuid4() for _ in range(8)]
    limits = (100, 1000, None, None, 0.02)

    async def call(order: list[uuid.UUID]) -> list[str]:
        events = [PlanRequested(request_id=uuid.uuid4(), user_id=user, user_profile="lift") for user in order]
        rows = await pool.fetch(
            "SELECT * FROM accept_plan_requests($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            [e.request_id for e in events],
            order,
            ["lift"] * len(order),
            [None] * len(order),
            [None] * len(order),
            [e.wire.decode() for e in events],
            [None] * len(order),
            *limits,
            "plan.requested",
        )
        return [row["outcome"] for row in sorted(rows, key=lambda row: row["item"])]

    async with asyncio.timeout(30):
        results = await asyncio.gather(*(call(users if i % 2 else users[::-1]) for i in range(10)))

    assert all(outcomes == ["accepted"] * len(users) for outcomes in results)
