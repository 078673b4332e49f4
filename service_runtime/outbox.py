"""The transactional outbox: an event written in the same transaction as the row it announces,
then published; a relay publishes whatever a crash or a broker outage left behind.

``relay`` runs as a periodic chore (``service_runtime.periodic.every``) in every gateway replica.
The publisher's ``Nats-Msg-Id`` makes the relay's re-publish of an event that did reach
JetStream a no-op inside the stream's duplicate window.
"""

import logging
from typing import Any, Protocol

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from contracts.events import EVENTS, Event
from service_runtime.bus import EventPublisher
from service_runtime.logs import reason
from service_runtime.metrics import OUTBOX_BACKLOG, OUTBOX_OLDEST_SECONDS
from service_runtime.tracing import current_traceparent, resumed

log = logging.getLogger(__name__)

_MODELS: dict[str, type[Event]] = {event.subject: event for event in EVENTS}

Connection = asyncpg.Connection | PoolConnectionProxy


async def stage(conn: Connection, event: Event) -> int:
    """Store ``event`` for publishing, inside the caller's transaction; return its outbox id.

    The row keeps the current trace context, so a relayed event still joins the request's trace.
    """
    outbox_id: int = await conn.fetchval(
        "INSERT INTO outbox (subject, payload, traceparent) VALUES ($1, $2, $3) RETURNING id",
        event.subject,
        event.wire.decode(),
        current_traceparent(),
    )
    return outbox_id


class Executes(Protocol):
    """What confirming needs of a pool or connection."""

    async def execute(self, query: str, *args: object) -> str: ...


async def confirm(pool: Executes, outbox_id: int) -> None:
    """The event is acknowledged by JetStream: forget it."""
    await confirm_many(pool, [outbox_id])


async def confirm_many(pool: Executes, outbox_ids: list[int]) -> None:
    """These events are acknowledged by JetStream: forget them, in one statement."""
    await pool.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", outbox_ids)


async def relay_once(pool: asyncpg.Pool, publisher: EventPublisher, *, older_than_seconds: float, batch: int) -> int:
    """Publish up to ``batch`` staged events older than ``older_than_seconds``; return how many.

    ``SKIP LOCKED``: several gateway replicas relay side by side without publishing the same row.
    """
    published = 0
    async with pool.acquire() as conn, conn.transaction():
        rows: list[Any] = await conn.fetch(
            "SELECT id, subject, payload, traceparent FROM outbox"
            " WHERE created_at < clock_timestamp() - make_interval(secs => $1)"
            " ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
            older_than_seconds,
            batch,
        )
        for row in rows:
            model = _MODELS.get(row["subject"])
            if model is None:
                log.error("outbox row %s has unknown subject %r; leaving it", row["id"], row["subject"])
                continue
            try:
                with resumed(row["traceparent"]):
                    await publisher.publish(model.model_validate_json(row["payload"]))
            except Exception as exc:
                await conn.execute(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1", row["id"], str(exc)
                )
                log.warning("outbox relay: publishing %s failed (%s); will retry", row["id"], reason(exc))
                break  # the broker is likely down: stop this round, keep order
            await conn.execute("DELETE FROM outbox WHERE id = $1", row["id"])
            published += 1
    return published


async def relay(pool: asyncpg.Pool, publisher: EventPublisher, *, older_than_seconds: float, batch: int = 200) -> None:
    """Relay until the outbox holds nothing old enough (a full batch means there may be more)."""
    while await relay_once(pool, publisher, older_than_seconds=older_than_seconds, batch=batch) == batch:
        pass
    await report_backlog(pool)


async def report_backlog(pool: asyncpg.Pool) -> None:
    """Export how many events wait to be published and how old the oldest is."""
    row = await pool.fetchrow(
        "SELECT count(*) AS backlog, extract(epoch FROM clock_timestamp() - min(created_at))::float8 AS oldest"
        " FROM outbox"
    )
    OUTBOX_BACKLOG.set(row["backlog"] if row else 0)
    OUTBOX_OLDEST_SECONDS.set((row["oldest"] if row else None) or 0.0)
