"""The Postgres adapter of ``RequestRepository``: the gateway's SQL, its pool and its row mapping.

Two locks keep the use case's checks true until its insert commits: one user's creations queue
behind that user's advisory lock, and, once a global budget is read, every creation queues
behind one global lock. A cancel locks the request's row, as the persister does before every write.
"""

# Deferred annotations: asyncpg's Pool and Record are generic only in its type stubs.
from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from itertools import groupby
from operator import itemgetter
from typing import TypeAlias
from uuid import UUID

import asyncpg
import orjson

from contracts.events import Event, PlanRequested
from service_runtime import outbox
from services.gateway.outbox_confirmations import GroupedConfirmations
from services.gateway.repository import Admission, PriorRequest
from services.gateway.requests import Unavailable
from services.gateway.views import DayView, EntryView, ExerciseView, PlanView, RequestSnapshot, WeekView

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

# Held to the end of the transaction.
_LOCK_USER = "SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text, 7340022))"

# Both caps checked and, when there is room, the request inserted: one round trip. It runs after
# the user's lock is granted, as its own statement, so its snapshot (READ COMMITTED: one per
# statement) sees every creation of this user that committed before. ``active`` counts the
# user's plans in flight; ``wait`` is the seconds until the oldest of their last ``$7`` requests
# leaves the 24-hour window (NULL: fewer than ``$7`` in the window, so there is room);
# ``inserted`` says whether the request row was written.
_ACCEPT = """
WITH active AS (
    SELECT count(*) AS n FROM workout_plan_requests WHERE user_id = $2 AND status = 'processing'
), daily AS (
    SELECT extract(epoch FROM created_at + interval '1 day' - clock_timestamp()) AS wait
    FROM workout_plan_requests
    WHERE user_id = $2 AND created_at > clock_timestamp() - interval '1 day'
    ORDER BY created_at DESC
    OFFSET $7 - 1 LIMIT 1
), inserted AS (
    INSERT INTO workout_plan_requests (id, user_id, status, stage, user_profile, system_prompt, idempotency_key)
    SELECT $1, $2, 'processing', 'queued', $3, $4, $5
    WHERE (SELECT n FROM active) < $6 AND NOT EXISTS (SELECT FROM daily)
    RETURNING id
)
SELECT (SELECT n FROM active) AS active, (SELECT wait FROM daily) AS wait, EXISTS (SELECT FROM inserted) AS inserted
"""

# Spent in the last 24 hours, counting each processing request at least at the reserve ($2).
_USER_SPEND = """
SELECT coalesce(sum(CASE WHEN status = 'processing' THEN greatest(cost_usd, $2) ELSE cost_usd END), 0)::float8
FROM workout_plan_requests
WHERE user_id = $1 AND created_at > clock_timestamp() - interval '1 day'
"""
_GLOBAL_SPEND = """
SELECT coalesce(sum(CASE WHEN status = 'processing' THEN greatest(cost_usd, $1) ELSE cost_usd END), 0)::float8
FROM workout_plan_requests
WHERE created_at > clock_timestamp() - interval '1 day'
"""
_LOCK_GLOBAL_BUDGET = "SELECT pg_advisory_xact_lock(7340023)"

_SELECT_IDEMPOTENT = """
SELECT id, status, user_profile, system_prompt FROM workout_plan_requests WHERE user_id = $1 AND idempotency_key = $2
"""

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

_CANCEL = """
UPDATE workout_plan_requests
SET status = 'cancelled', stage = 'cancelled', error = 'cancelled by the user',
    completed_at = clock_timestamp(), updated_at = clock_timestamp()
WHERE id = $1
RETURNING id, status, stage, error, plan_id, created_at, updated_at, completed_at
"""

_SELECT_PLAN = """
SELECT id, request_id, title, summary, created_at, completed_at
FROM workout_plans
WHERE id = $1 AND user_id = $2 AND assembly = 'complete' AND request_id IS NOT NULL
"""

_SELECT_ENTRIES = """
SELECT e.week, e.week_theme, e.day_of_week AS day, e.day_focus, e.position,
       x.key AS exercise_key, x.name AS exercise_name, x.profile AS exercise_profile,
       e.sets, e.reps, e.rest_seconds, e.notes
FROM workout_entries AS e
JOIN exercises AS x ON x.key = e.exercise_key
WHERE e.plan_id = $1
ORDER BY e.week, e.day, e.position
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
    )


async def _register_json_codecs(conn: asyncpg.Connection[asyncpg.Record]) -> None:
    await conn.set_type_codec(
        "jsonb",
        schema="pg_catalog",
        encoder=lambda value: orjson.dumps(value).decode(),
        decoder=orjson.loads,
    )


class _Creation:
    """``Creating`` in one transaction that holds the user's advisory lock."""

    def __init__(self, conn: _Connection, user_id: UUID) -> None:
        self._conn = conn
        self._user_id = user_id

    async def find_by_idempotency_key(self, key: str) -> PriorRequest | None:
        row = await self._conn.fetchrow(_SELECT_IDEMPOTENT, self._user_id, key)
        if row is None:
            return None
        return PriorRequest(row["id"], row["status"], row["user_profile"], row["system_prompt"])

    async def spent_by_user(self, reserve_usd: float) -> float:
        spent: float = await self._conn.fetchval(_USER_SPEND, self._user_id, reserve_usd)
        return spent

    async def spent_by_everyone(self, reserve_usd: float) -> float:
        await self._conn.execute(_LOCK_GLOBAL_BUDGET)
        spent: float = await self._conn.fetchval(_GLOBAL_SPEND, reserve_usd)
        return spent

    async def insert_within_caps(
        self, event: PlanRequested, idempotency_key: str | None, *, max_active: int, max_per_day: int
    ) -> Admission:
        row = await self._conn.fetchrow(
            _ACCEPT,
            event.request_id,
            event.user_id,
            event.user_profile,
            event.system_prompt,
            idempotency_key,
            max_active,
            max_per_day,
        )
        assert row is not None  # the SELECT always returns one row
        wait = row["wait"]
        return Admission(row["inserted"], row["active"], None if wait is None else float(wait))

    async def stage(self, event: Event) -> int:
        return await outbox.stage(self._conn, event)


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


class PostgresRequests:
    """``RequestRepository`` on an asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool[asyncpg.Record], *, acquire_timeout_seconds: float = 5.0) -> None:
        self._pool = pool
        self._acquire_timeout = acquire_timeout_seconds
        self._confirmations = GroupedConfirmations(pool)

    @asynccontextmanager
    async def creating(self, user_id: UUID) -> AsyncIterator[_Creation]:
        async with self._connection() as conn, conn.transaction():
            await conn.execute(_LOCK_USER, user_id)
            yield _Creation(conn, user_id)

    @asynccontextmanager
    async def cancelling(self, user_id: UUID, request_id: UUID) -> AsyncIterator[_Cancellation | None]:
        async with self._connection() as conn, conn.transaction():
            row = await conn.fetchrow(_LOCK_OWN_REQUEST, request_id, user_id)
            yield None if row is None else _Cancellation(conn, _snapshot(row))

    async def confirm(self, outbox_id: int) -> None:
        await self._confirmations.confirm(outbox_id)

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
            plan = await conn.fetchrow(_SELECT_PLAN, plan_id, user_id)
            if plan is None:
                return None
            # A complete plan is never written again, so the two reads need no shared snapshot.
            entries = await conn.fetch(_SELECT_ENTRIES, plan_id)
        return PlanView(
            plan_id=plan["id"],
            request_id=plan["request_id"],
            title=plan["title"],
            summary=plan["summary"],
            created_at=plan["created_at"],
            completed_at=plan["completed_at"],
            weeks=_weeks(entries),
        )

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


def _weeks(rows: Sequence[asyncpg.Record]) -> list[WeekView]:
    """Nest entry rows, already ordered by week, day and position, into weeks of days."""
    weeks: list[WeekView] = []
    for week, grouped_week in groupby(rows, key=itemgetter("week")):
        week_rows = list(grouped_week)
        days: list[DayView] = []
        for day, grouped_day in groupby(week_rows, key=itemgetter("day")):
            day_rows = list(grouped_day)
            days.append(DayView(day=day, focus=day_rows[0]["day_focus"], entries=[_entry(row) for row in day_rows]))
        weeks.append(WeekView(week=week, theme=week_rows[0]["week_theme"], days=days))
    return weeks


def _entry(row: asyncpg.Record) -> EntryView:
    return EntryView(
        position=row["position"],
        exercise=ExerciseView(key=row["exercise_key"], name=row["exercise_name"], profile=row["exercise_profile"]),
        sets=row["sets"],
        reps=row["reps"],
        rest_seconds=row["rest_seconds"],
        notes=row["notes"],
    )
