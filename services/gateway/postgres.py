"""The Postgres adapter of ``RequestRepository``: the gateway's SQL, its pool and its row mapping.

Accepting is one call of ``accept_plan_request`` (migration 0012): two locks inside it keep its
checks true until its insert commits (one user's creations queue behind that user's advisory lock,
and, with a global budget, every creation behind one global lock). Accepts that arrive while one is
being written go in the next call together (``service_runtime.groups``), through
``accept_plan_requests`` (migration 0014): one round trip and one commit for the group, each item
checked and answered as if alone, the users' locks taken in one order. Outbox rows of published
events are deleted in groups, in the background (``outbox_confirmations``). A cancel locks the
request's row, as the persister does before every write.
"""

# Deferred annotations: asyncpg's Pool and Record are generic only in its type stubs.
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Literal, TypeAlias
from uuid import UUID

import asyncpg
import orjson

from contracts.events import Event, PlanRequested, WeekRequested
from contracts.plan import PlanOutline
from service_runtime import outbox
from service_runtime.pools import nothing_to_reset
from service_runtime.tracing import current_traceparent
from services.gateway import plan_reads
from services.gateway.accepts import GroupedAccepts, admission_of
from services.gateway.outbox_confirmations import GroupedConfirmations
from services.gateway.repository import Admission, Limits, RegenerationSource, ReviewState
from services.gateway.requests import Unavailable
from services.gateway.views import (
    PlanView,
    RequestSnapshot,
    WeekHistory,
)

__all__ = ["PostgresRequests", "open_pool"]

_Connection: TypeAlias = "asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"

# Faults that say "the database is not answering right now", as opposed to a bug in a query.
_OUTAGES: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)

_SELECT_REQUEST = """
SELECT id, status, stage, error, plan_id, created_at, updated_at, completed_at
FROM workout_plan_requests WHERE id = $1 AND user_id = $2
"""

_LOCK_OWN_REQUEST = """
SELECT id, status, stage, error, plan_id, created_at, updated_at, completed_at
FROM workout_plan_requests WHERE id = $1 AND user_id = $2 FOR UPDATE
"""

# Keyset pagination on the (user_id, created_at DESC) index; the id breaks ties. A cursor that is
# not one of the user's requests makes the row comparison NULL: an empty page, nothing revealed.
_LIST_REQUESTS = """
SELECT id, status, stage, error, plan_id, created_at, updated_at, completed_at
FROM workout_plan_requests
WHERE user_id = $1
  AND ($2::uuid IS NULL
       OR (created_at, id) < (SELECT created_at, id FROM workout_plan_requests WHERE id = $2 AND user_id = $1))
ORDER BY created_at DESC, id DESC
LIMIT $3
"""

_SELECT_REVIEW = """
SELECT id, status, stage, error, plan_id, created_at, updated_at, completed_at, user_profile, system_prompt,
       review_seconds, review_round, review_adjustments, review_until, review_outline
FROM workout_plan_requests WHERE id = $1 AND user_id = $2
"""

_LOCK_REVIEW = _SELECT_REVIEW + " FOR UPDATE"

# A confirmation keeps the skeleton shown (the weeks follow it); an adjustment clears it until the
# next one is written.
_DECIDE = """
UPDATE workout_plan_requests
SET stage = 'queued', review_action = $2, review_round = $3, review_adjustments = $4, review_until = NULL,
    review_outline = CASE WHEN $2 = 'adjust' THEN NULL ELSE review_outline END, updated_at = clock_timestamp()
WHERE id = $1
RETURNING id, status, stage, error, plan_id, created_at, updated_at, completed_at
"""

_CANCEL = """
UPDATE workout_plan_requests
SET status = 'cancelled', stage = 'cancelled', error = 'cancelled by the user',
    completed_at = clock_timestamp(), updated_at = clock_timestamp()
WHERE id = $1
RETURNING id, status, stage, error, plan_id, created_at, updated_at, completed_at
"""

_ACCEPT_WEEK = """
SELECT * FROM accept_week_request($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
"""


async def open_pool(dsn: str, *, min_size: int, max_size: int, timeout_seconds: float) -> asyncpg.Pool[asyncpg.Record]:
    """A connection pool whose connections decode ``jsonb`` to Python values."""
    return await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout_seconds,
        command_timeout=timeout_seconds,
        init=_register_json_codecs,
        reset=nothing_to_reset,
    )


async def _register_json_codecs(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=lambda value: orjson.dumps(value).decode(),
        decoder=orjson.loads,
    )


class _Cancellation:
    """``Cancelling`` in one transaction that holds the request's row lock."""

    def __init__(self, conn: _Connection, current: RequestSnapshot) -> None:
        self._conn = conn
        self._current = current

    @property
    def current(self) -> RequestSnapshot:
        return self._current

    async def mark_cancelled(self) -> RequestSnapshot:
        row = await self._conn.fetchrow(_CANCEL, self._current.request_id)
        assert row is not None  # the row is locked by us
        self._current = _snapshot(row)
        return self._current

    async def stage(self, event: Event) -> int:
        return await outbox.stage(self._conn, event)


class _Review:
    """``Reviewing`` in one transaction that holds the request's row lock."""

    def __init__(self, conn: _Connection, current: ReviewState) -> None:
        self._conn = conn
        self._current = current

    @property
    def current(self) -> ReviewState:
        return self._current

    async def decide(
        self, action: Literal["confirm", "adjust"], round_: int, adjustments: tuple[str, ...]
    ) -> RequestSnapshot:
        row = await self._conn.fetchrow(_DECIDE, self._current.snapshot.request_id, action, round_, list(adjustments))
        assert row is not None  # the row is locked by us
        return _snapshot(row)

    async def stage(self, event: Event) -> int:
        return await outbox.stage(self._conn, event)


class PostgresRequests:
    """``RequestRepository`` on an asyncpg pool."""

    def __init__(
        self,
        pool: asyncpg.Pool[asyncpg.Record],
        *,
        acquire_timeout_seconds: float = 5.0,
        accept_writers: int = 2,
        accepts_per_write: int = 64,
        accept_linger_seconds: float = 0.0,
    ) -> None:
        self._pool = pool
        self._acquire_timeout = acquire_timeout_seconds
        self._confirmations = GroupedConfirmations(pool)
        self._accepts = GroupedAccepts(
            self._connection, writers=accept_writers, per_write=accepts_per_write, linger_seconds=accept_linger_seconds
        )

    async def accept(
        self, event: PlanRequested, payload: str, idempotency_key: str | None, limits: Limits
    ) -> Admission:
        return await self._accepts.accept(event, payload, idempotency_key, limits)

    async def accept_week(
        self, event: WeekRequested, payload: str, idempotency_key: str | None, limits: Limits
    ) -> Admission:
        async with self._connection() as conn:
            row = await conn.fetchrow(
                _ACCEPT_WEEK,
                event.request_id,
                event.user_id,
                event.plan_id,
                event.week,
                event.instruction,
                idempotency_key,
                limits.max_active,
                limits.max_per_day,
                limits.user_budget_usd,
                limits.global_budget_usd,
                limits.reserve_usd,
                event.subject,
                payload,
                current_traceparent(),
            )
        assert row is not None  # the function always returns one row
        return admission_of(row)

    async def regeneration_source(self, user_id: UUID, plan_id: UUID) -> RegenerationSource | None:
        async with self._connection() as conn:
            return await plan_reads.regeneration_source(conn, user_id, plan_id)

    async def week_history(self, user_id: UUID, plan_id: UUID, week: int) -> WeekHistory | None:
        async with self._connection() as conn:
            return await plan_reads.week_history(conn, user_id, plan_id, week)

    @asynccontextmanager
    async def reviewing(self, user_id: UUID, request_id: UUID) -> AsyncIterator[_Review | None]:
        async with self._connection() as conn, conn.transaction():
            row = await conn.fetchrow(_LOCK_REVIEW, request_id, user_id)
            yield None if row is None else _Review(conn, _review_state(row))

    async def get_review(self, user_id: UUID, request_id: UUID) -> ReviewState | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(_SELECT_REVIEW, request_id, user_id)
        return None if row is None else _review_state(row)

    @asynccontextmanager
    async def cancelling(self, user_id: UUID, request_id: UUID) -> AsyncIterator[_Cancellation | None]:
        async with self._connection() as conn, conn.transaction():
            row = await conn.fetchrow(_LOCK_OWN_REQUEST, request_id, user_id)
            yield None if row is None else _Cancellation(conn, _snapshot(row))

    def confirm_later(self, outbox_id: int) -> None:
        self._confirmations.later(outbox_id)

    async def drain(self) -> None:
        """Finish the confirmations handed over so far (at shutdown, before the pool closes)."""
        await self._confirmations.drain()

    async def get_request(self, user_id: UUID, request_id: UUID) -> RequestSnapshot | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(_SELECT_REQUEST, request_id, user_id)
        return None if row is None else _snapshot(row)

    async def list_requests(self, user_id: UUID, *, limit: int, after: UUID | None) -> list[RequestSnapshot]:
        async with self._connection() as conn:
            rows = await conn.fetch(_LIST_REQUESTS, user_id, after, limit)
        return [_snapshot(row) for row in rows]

    async def get_plan(self, user_id: UUID, plan_id: UUID) -> PlanView | None:
        async with self._connection() as conn:
            return await plan_reads.plan_view(conn, user_id, plan_id)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[_Connection]:
        try:
            async with self._pool.acquire(timeout=self._acquire_timeout) as conn:
                yield conn
        except _OUTAGES as exc:
            raise Unavailable("the database is not answering") from exc


def _snapshot(row: asyncpg.Record) -> RequestSnapshot:
    return RequestSnapshot(
        request_id=row["id"],
        status=row["status"],
        stage=row["stage"],
        error=row["error"],
        plan_id=row["plan_id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        completed_at=row["completed_at"],
    )


def _review_state(row: asyncpg.Record) -> ReviewState:
    outline = row["review_outline"]
    return ReviewState(
        snapshot=_snapshot(row),
        user_profile=row["user_profile"],
        system_prompt=row["system_prompt"],
        review_seconds=row["review_seconds"],
        review_round=row["review_round"],
        adjustments=tuple(row["review_adjustments"]),
        review_until=row["review_until"],
        outline=None if outline is None else PlanOutline.model_validate(outline),
    )
