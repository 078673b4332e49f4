"""Clients recover on their own after the broker or the database restarts."""

import asyncio
import uuid

import pytest

from contracts.events import PlanFailed
from devstack import NatsServer, PostgresServer
from service_runtime.bus import EventBus
from services.persister.postgres import create_pool

pytestmark = pytest.mark.integration


async def eventually(action, timeout: float = 20):  # type: ignore[no-untyped-def]
    """Retry ``action`` until it succeeds, as a consumer's redelivery would."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                return await action()
            except Exception:
                await asyncio.sleep(0.2)


async def test_the_pool_serves_again_after_postgres_restarts(
    postgres_server: PostgresServer | None, database_url: str
) -> None:
    if postgres_server is None:
        pytest.skip("DATABASE_URL points at a server these tests do not control")
    pool = await create_pool(database_url, 2, 4)
    try:
        assert await pool.fetchval("SELECT 1") == 1
        await asyncio.to_thread(postgres_server.restart)
        assert await eventually(lambda: pool.fetchval("SELECT 2")) == 2
    finally:
        await pool.close()


async def test_the_bus_reconnects_and_publishes_after_nats_restarts(
    nats_server: NatsServer | None, nats_url: str
) -> None:
    if nats_server is None:
        pytest.skip("NATS_URL points at a server these tests do not control")
    async with EventBus(nats_url, client_name="recovery-test", publish_timeout_seconds=2) as bus:
        await bus.publish(PlanFailed(request_id=uuid.uuid4(), stage="planner", reason="before"))
        await asyncio.to_thread(nats_server.restart)
        await eventually(lambda: bus.publish(PlanFailed(request_id=uuid.uuid4(), stage="planner", reason="after")))
        assert bus.is_connected
