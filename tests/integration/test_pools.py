"""Our pools skip asyncpg's reset query; what a released connection must not carry still goes."""

import asyncpg
import pytest

from service_runtime.pools import nothing_to_reset

pytestmark = pytest.mark.integration


async def test_a_connection_released_mid_transaction_comes_back_rolled_back(database_url: str) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=1, reset=nothing_to_reset)
    try:
        async with pool.acquire() as conn:
            await conn.execute("CREATE TEMP TABLE IF NOT EXISTS pool_probe (n int)")
            await conn.execute("BEGIN")
            await conn.execute("INSERT INTO pool_probe VALUES (1)")
            await conn.execute("SELECT pg_advisory_xact_lock(424242)")
        async with pool.acquire() as conn:  # the same (only) connection
            assert not conn.is_in_transaction()
            assert await conn.fetchval("SELECT count(*) FROM pool_probe") == 0
            held = await conn.fetchval(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
            )
            assert held == 0
    finally:
        await pool.close()
