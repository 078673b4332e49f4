"""A migrated database of a test's own, on the session's Postgres, dropped afterwards."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from devstack import migrate


@asynccontextmanager
async def fresh_database(database_url: str, prefix: str) -> AsyncIterator[str]:
    """The URL of a new database with the migrations applied (by the real migrate command)."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = database_url.rsplit("/", 1)[0] + f"/{name}"
    try:
        await asyncio.to_thread(migrate, url)
        yield url
    finally:
        admin = await asyncpg.connect(database_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
