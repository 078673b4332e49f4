"""An in-memory ``RequestRepository``, for the use case's fast tests and nothing else.

It keeps what the Postgres adapter promises: one user's creations wait for each other (and every
creation waits for one that read the global spend), the checks and the insert are one step, a
cancel's writes appear only when its block ends cleanly, and reads are scoped to the caller.
Plans appear only through ``add_plan``: the persister writes them, never the gateway.
"""

import asyncio
import itertools
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal, TypeVar
from uuid import UUID

from contracts.events import Event, PlanRequested, WeekRequested
from contracts.plan import PlanOutline
from contracts.progress import RequestStatus
from services.gateway.repository import (
    Admission,
    Limits,
    PriorRequest,
    RegenerationSource,
    ReviewState,
    over_budget,
)
from services.gateway.requests import Unavailable
from services.gateway.views import PlanView, RequestSnapshot, WeekHistory, WeekVersionView

__all__ = ["InMemoryRequests", "StoredRequest"]

_DAY = timedelta(days=1)


async def _round_trip() -> None:
    """Let other tasks run, as a real database call would: without the locks, a burst interleaves."""
    await asyncio.sleep(0)


@dataclass(frozen=True)
class StoredRequest:
    """A request row as the fake holds it."""

    snapshot: RequestSnapshot
    user_id: UUID
    user_profile: str
    system_prompt: str | None
    idempotency_key: str | None
    cost_usd: float = 0.0
    regenerates: UUID | None = None  # the plan a week of which this request writes again
    review_seconds: int = 0
    review_round: int = 0
    adjustments: tuple[str, ...] = ()
    review_until: datetime | None = None
    outline: PlanOutline | None = None

    def review_state(self) -> ReviewState:
        return ReviewState(
            self.snapshot,
            self.user_profile,
            self.system_prompt,
            self.review_seconds,
            self.review_round,
            self.adjustments,
            self.review_until,
            self.outline,
        )


class _Transaction:
    """Writes kept aside until the repository applies them, when the block ends cleanly."""

    def __init__(self, repository: "InMemoryRequests") -> None:
        self._repository = repository
        self.staged: dict[int, Event] = {}

    async def stage(self, event: Event) -> int:
        await _round_trip()
        outbox_id = next(self._repository.outbox_ids)
        self.staged[outbox_id] = event
        return outbox_id


class _RowTransaction(_Transaction):
    """A transaction holding one request's row (and its lock): its new ``row`` is applied at the end."""

    def __init__(self, repository: "InMemoryRequests", row: StoredRequest) -> None:
        super().__init__(repository)
        self.row = row


class _Cancellation(_RowTransaction):
    @property
    def current(self) -> RequestSnapshot:
        return self.row.snapshot

    async def mark_cancelled(self) -> RequestSnapshot:
        await _round_trip()
        now = self._repository.clock()
        cancelled = self.row.snapshot.model_copy(
            update={
                "status": "cancelled",
                "stage": "cancelled",
                "error": "cancelled by the user",
                "completed_at": now,
                "updated_at": now,
            }
        )
        self.row = replace(self.row, snapshot=cancelled)
        return cancelled


class _Review(_RowTransaction):
    @property
    def current(self) -> ReviewState:
        return self.row.review_state()

    async def decide(
        self, action: Literal["confirm", "adjust"], round_: int, adjustments: tuple[str, ...]
    ) -> RequestSnapshot:
        await _round_trip()
        snapshot = self.row.snapshot.model_copy(update={"stage": "queued", "updated_at": self._repository.clock()})
        outline = None if action == "adjust" else self.row.outline
        self.row = replace(
            self.row,
            snapshot=snapshot,
            review_round=round_,
            adjustments=adjustments,
            review_until=None,
            outline=outline,
        )
        return snapshot


_HeldT = TypeVar("_HeldT", bound=_RowTransaction)


class InMemoryRequests:
    """``RequestRepository`` in memory. Set ``available = False`` for an outage (``Unavailable``)."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.clock = clock
        self.available = True
        self.requests: dict[UUID, StoredRequest] = {}
        # Staged events not yet confirmed as published: what the outbox relay would publish.
        self.outbox: dict[int, Event] = {}
        self.outbox_ids = itertools.count(1)
        self.global_lock = asyncio.Lock()
        self._user_locks: defaultdict[UUID, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._request_locks: defaultdict[UUID, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._plans: dict[UUID, tuple[UUID, PlanView, bool]] = {}

    async def accept(
        self, event: PlanRequested, payload: str, idempotency_key: str | None, limits: Limits
    ) -> Admission:
        self._check_available()
        async with self._user_locks[event.user_id]:
            return await self._admit(
                event,
                user_profile=event.user_profile,
                system_prompt=event.system_prompt,
                payload=payload,
                idempotency_key=idempotency_key,
                limits=limits,
                review_seconds=event.review_seconds,
            )

    async def accept_week(
        self, event: WeekRequested, payload: str, idempotency_key: str | None, limits: Limits
    ) -> Admission:
        self._check_available()
        async with self._user_locks[event.user_id]:
            await _round_trip()
            rows = self.rows_of(event.user_id)
            if not any(idempotency_key is not None and row.idempotency_key == idempotency_key for row in rows):
                owner, _, complete = self._plans.get(event.plan_id, (None, None, False))
                if owner != event.user_id or not complete:
                    return Admission("not_found")
                for row in self.requests.values():
                    if row.regenerates == event.plan_id and row.snapshot.status == "processing":
                        prior = PriorRequest(row.snapshot.request_id, "processing", "", None)
                        return Admission("busy", prior=prior)
            admission = await self._admit(
                event,
                user_profile=event.instruction or "",
                system_prompt=None,
                payload=payload,
                idempotency_key=idempotency_key,
                limits=limits,
            )
            if admission.outcome == "accepted":
                self.requests[event.request_id] = replace(self.requests[event.request_id], regenerates=event.plan_id)
            return admission

    async def _admit(
        self,
        event: PlanRequested | WeekRequested,
        *,
        user_profile: str,
        system_prompt: str | None,
        payload: str,
        idempotency_key: str | None,
        limits: Limits,
        review_seconds: int = 0,
    ) -> Admission:
        """The checks and the insert, under the user's lock (held by the caller)."""
        async with AsyncExitStack() as locks:
            await _round_trip()
            rows = self.rows_of(event.user_id)
            for row in rows:
                if idempotency_key is not None and row.idempotency_key == idempotency_key:
                    prior = PriorRequest(
                        row.snapshot.request_id, row.snapshot.status, row.user_profile, row.system_prompt
                    )
                    return Admission("existing", prior=prior)
            if limits.user_budget_usd is not None:
                spent = self.spent(rows, limits.reserve_usd)
                if over_budget(spent, limits.reserve_usd, limits.user_budget_usd):
                    return Admission("user_budget", spent_usd=spent)
            if limits.global_budget_usd is not None:
                await locks.enter_async_context(self.global_lock)
                await _round_trip()
                spent = self.spent(list(self.requests.values()), limits.reserve_usd)
                if over_budget(spent, limits.reserve_usd, limits.global_budget_usd):
                    return Admission("global_budget", spent_usd=spent)
            now = self.clock()
            active = sum(1 for row in rows if row.snapshot.status == "processing")
            if active >= limits.max_active:
                return Admission("active_cap", active=active)
            recent = sorted(
                (row.snapshot.created_at for row in rows if row.snapshot.created_at > now - _DAY), reverse=True
            )
            if len(recent) >= limits.max_per_day:
                return Admission(
                    "daily_quota", wait_seconds=(recent[limits.max_per_day - 1] + _DAY - now).total_seconds()
                )
            await _round_trip()
            snapshot = RequestSnapshot(
                request_id=event.request_id,
                status="processing",
                stage="queued",
                error=None,
                plan_id=None,
                created_at=now,
                updated_at=now,
                completed_at=None,
            )
            self.requests[event.request_id] = StoredRequest(
                snapshot,
                event.user_id,
                user_profile,
                system_prompt,
                idempotency_key,
                review_seconds=review_seconds,
            )
            outbox_id = next(self.outbox_ids)
            self.outbox[outbox_id] = type(event).model_validate_json(payload)
            return Admission("accepted", active=active, outbox_id=outbox_id)

    async def regeneration_source(self, user_id: UUID, plan_id: UUID) -> RegenerationSource | None:
        plan = await self.get_plan(user_id, plan_id)
        if plan is None:
            return None
        made_by = self.requests.get(plan.request_id)
        return RegenerationSource(
            plan.as_written(),
            None,
            made_by.user_profile if made_by is not None else "",
            made_by.system_prompt if made_by is not None else None,
        )

    async def week_history(self, user_id: UUID, plan_id: UUID, week: int) -> WeekHistory | None:
        source = await self.regeneration_source(user_id, plan_id)
        if source is None:
            return None
        written = next(w for w in source.plan.weeks if w.week == week)
        version = WeekVersionView(
            version=1,
            current=True,
            theme=written.theme,
            days=written.days,
            instruction=None,
            request_id=None,
            quality=None,
            current_from=None,
        )
        return WeekHistory(plan_id=plan_id, week=week, current_version=1, versions=[version])

    def reviewing(self, user_id: UUID, request_id: UUID) -> AbstractAsyncContextManager[_Review | None]:
        return self._holding(user_id, request_id, _Review)

    async def get_review(self, user_id: UUID, request_id: UUID) -> ReviewState | None:
        self._check_available()
        row = self.requests.get(request_id)
        return None if row is None or row.user_id != user_id else row.review_state()

    def cancelling(self, user_id: UUID, request_id: UUID) -> AbstractAsyncContextManager[_Cancellation | None]:
        return self._holding(user_id, request_id, _Cancellation)

    @asynccontextmanager
    async def _holding(
        self, user_id: UUID, request_id: UUID, kind: Callable[["InMemoryRequests", StoredRequest], _HeldT]
    ) -> AsyncIterator[_HeldT | None]:
        """The user's request held under its lock; its row and staged events applied when the block
        ends cleanly. None when it is not theirs or does not exist."""
        self._check_available()
        async with self._request_locks[request_id]:
            row = self.requests.get(request_id)
            if row is None or row.user_id != user_id:
                yield None
                return
            held = kind(self, row)
            yield held
            self.requests[request_id] = held.row
            self.outbox.update(held.staged)

    def confirm_later(self, outbox_id: int) -> None:
        if self.available:  # else the rows stay for the relay, as a failed DELETE leaves them
            self.outbox.pop(outbox_id, None)

    async def get_request(self, user_id: UUID, request_id: UUID) -> RequestSnapshot | None:
        self._check_available()
        row = self.requests.get(request_id)
        return None if row is None or row.user_id != user_id else row.snapshot

    async def list_requests(self, user_id: UUID, *, limit: int, after: UUID | None) -> list[RequestSnapshot]:
        self._check_available()
        newest_first = sorted(
            (row.snapshot for row in self.rows_of(user_id)), key=lambda s: (s.created_at, s.request_id), reverse=True
        )
        if after is not None:
            cursor = await self.get_request(user_id, after)
            if cursor is None:
                return []
            newest_first = [s for s in newest_first if (s.created_at, s.request_id) < (cursor.created_at, after)]
        return newest_first[:limit]

    async def get_plan(self, user_id: UUID, plan_id: UUID) -> PlanView | None:
        self._check_available()
        owner, plan, complete = self._plans.get(plan_id, (None, None, False))
        return plan if owner == user_id and complete else None

    # What the persister (or the ledger) would write, for tests to set the scene.

    def add_plan(self, user_id: UUID, plan: PlanView, *, complete: bool = True) -> None:
        self._plans[plan.plan_id] = (user_id, plan, complete)

    def wait_for_review(self, request_id: UUID, outline: PlanOutline) -> None:
        """Show the request's skeleton to its user, as the persister would on ``plan.awaiting.review``."""
        row = self.requests[request_id]
        now = self.clock()
        snapshot = row.snapshot.model_copy(update={"stage": "waiting", "updated_at": now})
        until = now + timedelta(seconds=row.review_seconds)
        self.requests[request_id] = replace(row, snapshot=snapshot, review_until=until, outline=outline)

    def end(self, request_id: UUID, status: RequestStatus, *, cost_usd: float | None = None) -> None:
        """Move a request to ``status`` (and its cost to ``cost_usd``), as the persister would."""
        row = self.requests[request_id]
        now = self.clock()
        ended = None if status == "processing" else now
        snapshot = row.snapshot.model_copy(
            update={"status": status, "stage": status, "updated_at": now, "completed_at": ended}
        )
        cost = row.cost_usd if cost_usd is None else cost_usd
        self.requests[request_id] = replace(row, snapshot=snapshot, cost_usd=cost)

    # Shared by the transactions.

    def rows_of(self, user_id: UUID) -> list[StoredRequest]:
        return [row for row in self.requests.values() if row.user_id == user_id]

    def spent(self, rows: list[StoredRequest], reserve_usd: float) -> float:
        since = self.clock() - _DAY
        return sum(
            (
                max(row.cost_usd, reserve_usd) if row.snapshot.status == "processing" else row.cost_usd
                for row in rows
                if row.snapshot.created_at > since
            ),
            0.0,
        )

    def _check_available(self) -> None:
        if not self.available:
            raise Unavailable("the in-memory database is switched off")
