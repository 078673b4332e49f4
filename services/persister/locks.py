"""Request row locks, taken first in every persister transaction (the lock order is in ``postgres.py``)."""

import uuid
from collections.abc import Iterable

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from service_runtime.outcomes import GiveUp

__all__ = ["lock_request", "lock_requests"]

Connection = asyncpg.Connection | PoolConnectionProxy


async def lock_request(conn: Connection, request_id: uuid.UUID) -> asyncpg.Record:
    """Lock one request's row; ``GiveUp`` when there is no such request."""
    request = (await lock_requests(conn, [request_id])).get(request_id)
    if request is None:
        raise GiveUp("unknown_request", f"no request {request_id}")
    return request


async def lock_requests(conn: Connection, request_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, asyncpg.Record]:
    """Lock the requests' rows, in id order (two transactions locking several cannot deadlock);
    the ones that exist, by id."""
    rows = await conn.fetch(
        "SELECT id, status, user_id, plan_id FROM workout_plan_requests WHERE id = ANY($1::uuid[])"
        " ORDER BY id FOR UPDATE",
        sorted(set(request_ids)),
    )
    return {row["id"]: row for row in rows}
