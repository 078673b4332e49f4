"""The gateway's database port: create requests, read request snapshots and finished plans.

The gateway writes one thing, the request row at creation (with its outbox row); the persister
owns every later write.
"""

# Deferred annotations: asyncpg's Pool and Record are generic only in its type stubs.
from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from itertools import groupby
from operator import itemgetter
from typing import Protocol
from uuid import UUID, uuid4

import asyncpg
import orjson

from contracts.events import Event, PlanCancelled, PlanRequested
from contracts.progress import PlanProgress, RequestStatus
from service_runtime import outbox
from service_runtime.bus import EventPublisher, ProgressAnnouncer
from service_runtime.logs import bind_request_id
from service_runtime.metrics import PLANS_ACCEPTED, PLANS_CANCELLED, PLANS_REFUSED
from services.gateway.confirmations import GroupedConfirmations
from services.gateway.views import DayView, EntryView, ExerciseView, PlanView, RequestSnapshot, WeekView

__all__ = [
    "Acceptance",
    "IdempotencyConflict",
    "NotCancellable",
    "PostgresRequestStore",
    "QuotaExceeded",
    "Quotas",
    "RequestStore",
    "Unavailable",
    "open_pool",
]

log = logging.getLogger(__name__)

# Faults that say "the database is not answering right now", as opposed to a bug in a query.
_OUTAGES: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
)


class IdempotencyConflict(Exception):
    """The caller reused an ``Idempotency-Key`` for a different request body."""


class Unavailable(Exception):
    """A dependency (Postgres or the event bus) cannot take the work now; nothing was stored."""


class QuotaExceeded(Exception):
    """The user may not start another plan now; nothing was stored. Try again after ``retry_after_seconds``."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_seconds = retry_after_seconds


class NotCancellable(Exception):
    """The request already ended ``completed`` or ``failed``; cancelling it changes nothing."""

    def __init__(self, status: str) -> None:
        super().__init__(status)
        self.status = status


@dataclass(frozen=True)
class Quotas:
    """How many plans one user may have in flight at once and start in any 24 hours, and what
    one user (and everyone) may spend in any 24 hours."""

    max_active: int
    max_per_day: int
    # An active slot frees when a plan ends, which we cannot predict; this is a polite guess.
    active_retry_after_seconds: int = 60
    user_daily_budget_usd: float | None = None
    global_daily_budget_usd: float | None = None
    # Reserved for each processing request until its real cost exceeds it.
    plan_cost_estimate_usd: float = 0.02


@dataclass(frozen=True)
class Acceptance:
    """The request a plan request created, or the earlier one an ``Idempotency-Key`` retry names,
    with its status now (a retry of a request that already ended says how it ended)."""

    request_id: UUID
    status: RequestStatus = "processing"


class RequestStore(Protocol):
    """Port for the gateway's reads and its one write. Reads are scoped to the calling user."""

    async def accept_request(
        self, *, user_id: UUID, user_profile: str, system_prompt: str | None, idempotency_key: str | None = None
    ) -> Acceptance:
        """``create_request``, answering with the request's current status as well."""
        ...

    async def create_request(
        self, *, user_id: UUID, user_profile: str, system_prompt: str | None, idempotency_key: str | None = None
    ) -> UUID:
        """Store a ``processing`` request and announce it with ``plan.requested``; return its id.

        With ``idempotency_key``, a repeat of the same user's key and body returns the first
        request's id and stores nothing; the same key with another body raises ``IdempotencyConflict``.
        """
        ...

    async def get_request(self, user_id: UUID, request_id: UUID) -> RequestSnapshot | None:
        """The user's request, or ``None`` when it does not exist or belongs to someone else."""
        ...

    async def list_requests(self, user_id: UUID, *, limit: int, after: UUID | None) -> list[RequestSnapshot]:
        """Up to ``limit`` of the user's requests, newest first; with ``after``, those older than that
        request (none when ``after`` is not one of the user's requests)."""
        ...

    async def cancel_request(self, user_id: UUID, request_id: UUID) -> RequestSnapshot | None:
        """End the user's ``processing`` request ``cancelled`` and announce ``plan.cancelled``.

        ``None`` when it does not exist or is someone else's; a request already cancelled is
        returned as it is; one that already completed or failed raises ``NotCancellable``."""
        ...

    async def get_plan(self, user_id: UUID, plan_id: UUID) -> PlanView | None:
        """The user's completed plan, or ``None`` when missing, unfinished or someone else's."""
        ...


# One user's creations queue behind this lock (held to the end of the transaction), so a burst
# of concurrent requests cannot all pass the quota checks before any of them is stored.
_LOCK_USER = "SELECT pg_advisory_xact_lock(hashtextextended($1::uuid::text, 7340022))"

# Both quotas checked and, when there is room, the request inserted: one round trip. It runs after
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

# Spent in the last 24 hours, counting each processing request at least at the estimate ($2): a
# burst of requests reserves budget before any of them has spent anything.
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
# Every creation queues behind this one lock while a global budget is set (and only then).
_LOCK_GLOBAL_BUDGET = "SELECT pg_advisory_xact_lock(7340023)"
_BUDGET_RETRY_AFTER_SECONDS = 3600

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


class PostgresRequestStore:
    """``RequestStore`` on an asyncpg pool, announcing new requests through ``publisher``."""

    def __init__(
        self,
        pool: asyncpg.Pool[asyncpg.Record],
        publisher: EventPublisher,
        progress: ProgressAnnouncer,
        quotas: Quotas,
        *,
        acquire_timeout_seconds: float = 5.0,
        publish_wait_seconds: float = 1.0,
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._progress = progress
        self._quotas = quotas
        self._acquire_timeout = acquire_timeout_seconds
        self._publish_wait = publish_wait_seconds
        self._confirmations = GroupedConfirmations(pool)

    async def create_request(
        self, *, user_id: UUID, user_profile: str, system_prompt: str | None, idempotency_key: str | None = None
    ) -> UUID:
        accepted = await self.accept_request(
            user_id=user_id, user_profile=user_profile, system_prompt=system_prompt, idempotency_key=idempotency_key
        )
        return accepted.request_id

    async def accept_request(
        self, *, user_id: UUID, user_profile: str, system_prompt: str | None, idempotency_key: str | None = None
    ) -> Acceptance:
        request_id = uuid4()
        bind_request_id(request_id)  # this request's log lines, and its HTTP span, name it from here on
        event = PlanRequested(
            request_id=request_id, user_id=user_id, user_profile=user_profile, system_prompt=system_prompt
        )
        # The row and its event commit together (the outbox), so an accepted request is never
        # lost: if the publish below fails or this process dies first, the relay publishes it.
        async with self._connection() as conn, conn.transaction():
            await conn.execute(_LOCK_USER, user_id)
            if idempotency_key is not None:
                first = await conn.fetchrow(_SELECT_IDEMPOTENT, user_id, idempotency_key)
                if first is not None:
                    # A retry of a request we already have: the same answer, nothing new, no quota spent.
                    if (first["user_profile"], first["system_prompt"]) != (user_profile, system_prompt):
                        raise IdempotencyConflict(idempotency_key)
                    return Acceptance(first["id"], first["status"])
            await self._check_budgets(conn, user_id)
            accepted = await conn.fetchrow(
                _ACCEPT,
                request_id,
                user_id,
                user_profile,
                system_prompt,
                idempotency_key,
                self._quotas.max_active,
                self._quotas.max_per_day,
            )
            assert accepted is not None  # the SELECT always returns one row
            if not accepted["inserted"]:
                raise self._refusal(accepted["active"], accepted["wait"])
            outbox_id = await outbox.stage(conn, event)
        await self._publish_staged(event, outbox_id)
        PLANS_ACCEPTED.inc()
        log.info("accepted request %s", request_id)
        return Acceptance(request_id)

    def _refusal(self, active: int, wait: float | None) -> QuotaExceeded:
        """Why ``_ACCEPT`` stored nothing: the active-plan cap, else the daily quota."""
        if active >= self._quotas.max_active:
            PLANS_REFUSED.labels("active_cap").inc()
            return QuotaExceeded(
                f"You already have {active} plans being generated (at most {self._quotas.max_active});"
                " wait for one to finish or cancel one.",
                self._quotas.active_retry_after_seconds,
            )
        PLANS_REFUSED.labels("daily_quota").inc()
        return QuotaExceeded(
            f"You started {self._quotas.max_per_day} plans in the last 24 hours, the most allowed.",
            max(1, math.ceil(float(wait or 0))),
        )

    async def _check_budgets(self, conn: asyncpg.pool.PoolConnectionProxy[asyncpg.Record], user_id: UUID) -> None:
        estimate = self._quotas.plan_cost_estimate_usd
        if (cap := self._quotas.user_daily_budget_usd) is not None:
            spent = await conn.fetchval(_USER_SPEND, user_id, estimate)
            if spent + estimate > cap:
                PLANS_REFUSED.labels("user_budget").inc()
                raise QuotaExceeded(
                    f"Your plans of the last 24 hours used (or reserved) ${spent:.2f} of your ${cap:.2f} budget.",
                    _BUDGET_RETRY_AFTER_SECONDS,
                )
        if (cap := self._quotas.global_daily_budget_usd) is not None:
            await conn.execute(_LOCK_GLOBAL_BUDGET)
            spent = await conn.fetchval(_GLOBAL_SPEND, estimate)
            if spent + estimate > cap:
                PLANS_REFUSED.labels("global_budget").inc()
                raise QuotaExceeded(
                    "The service has reached its spending limit for now; try again later.",
                    _BUDGET_RETRY_AFTER_SECONDS,
                )

    async def _publish_staged(self, event: Event, outbox_id: int) -> None:
        try:
            # Bounded: with the broker away the app still gets its answer in about a second, and
            # the relay publishes later (a publish that did land is de-duplicated by JetStream).
            async with asyncio.timeout(self._publish_wait):
                await self._publisher.publish(event)
            await self._confirmations.confirm(outbox_id)
        except Exception as exc:
            log.warning("%s for %s left to the outbox relay: %s", event.subject, event.request_id, exc)

    async def list_requests(self, user_id: UUID, *, limit: int, after: UUID | None) -> list[RequestSnapshot]:
        async with self._connection() as conn:
            rows = await conn.fetch(_LIST_REQUESTS, user_id, after, limit)
        return [_snapshot(row) for row in rows]

    async def cancel_request(self, user_id: UUID, request_id: UUID) -> RequestSnapshot | None:
        async with self._connection() as conn, conn.transaction():
            # The persister takes the same row lock before any write, so it either finished
            # first (and we see a terminal status) or sees ``cancelled`` and drops its work.
            row = await conn.fetchrow(_LOCK_OWN_REQUEST, request_id, user_id)
            if row is None:
                return None
            if row["status"] == "cancelled":
                return _snapshot(row)
            if row["status"] != "processing":
                raise NotCancellable(row["status"])
            await conn.execute(
                "DELETE FROM workout_plans WHERE request_id = $1 AND assembly = 'assembling'", request_id
            )
            updated = await conn.fetchrow(_CANCEL, request_id)
            assert updated is not None  # the row is locked by us
            cancelled = _snapshot(updated)
            event = PlanCancelled(request_id=request_id, user_id=user_id)
            outbox_id = await outbox.stage(conn, event)
        await self._publish_staged(event, outbox_id)
        PLANS_CANCELLED.inc()
        await self._progress.announce(
            PlanProgress(request_id=request_id, status="cancelled", stage="cancelled", error=cancelled.error)
        )
        log.info("cancelled request %s", request_id)
        return cancelled

    async def get_request(self, user_id: UUID, request_id: UUID) -> RequestSnapshot | None:
        async with self._connection() as conn:
            row = await conn.fetchrow(_SELECT_REQUEST, request_id, user_id)
        return None if row is None else _snapshot(row)

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
    async def _connection(self) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy[asyncpg.Record]]:
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
