from collections.abc import AsyncIterator

import asyncpg
import nats
import pytest
from nats.aio.client import Client
from nats.js import JetStreamContext

from services.persister.postgres import create_pool


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(database_url, 2, 12)
    yield pool
    await pool.close()


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    client = await nats.connect(nats_url)
    yield client
    await client.drain()


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """One plain connection, for looking at rows."""
    conn = await asyncpg.connect(database_url)
    yield conn
    await conn.close()


@pytest.fixture
async def js(nc: Client) -> JetStreamContext:
    return nc.jetstream()
