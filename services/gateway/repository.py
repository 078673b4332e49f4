"""The gateway's port to its database: what the use case (``services.gateway.requests``) needs of it.

``RequestRepository`` has one real adapter (``services.gateway.postgres``) and one fake
(``services.gateway.memory``). Its transactions serialise what the rules need serialised; an
outage raises ``services.gateway.requests.Unavailable``.
"""

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol
from uuid import UUID

from contracts.events import Event, PlanRequested, WeekRequested
from contracts.plan import PlanOutline, PlanSkeleton, WorkoutPlan
from contracts.progress import RequestStatus
from services.gateway.views import PlanView, RequestSnapshot, WeekHistory

__all__ = [
    "AcceptOutcome",
    "Admission",
    "Cancelling",
    "Limits",
    "PriorRequest",
    "RegenerationSource",
    "RequestRepository",
    "ReviewState",
    "Reviewing",
    "over_budget",
]


@dataclass(frozen=True)
class PriorRequest:
    """The request a user's ``Idempotency-Key`` already names, with the body it was made with."""

    request_id: UUID
    status: RequestStatus
    user_profile: str
    system_prompt: str | None


@dataclass(frozen=True)
class Limits:
    """What one creation is checked against: per-user caps, and spend caps in USD per 24 hours
    (None: no cap), each ``processing`` request counted at least at ``reserve_usd``."""

    max_active: int
    max_per_day: int
    user_budget_usd: float | None
    global_budget_usd: float | None
    reserve_usd: float


def over_budget(spent_usd: float, reserve_usd: float, budget_usd: float) -> bool:
    """Whether reserving ``reserve_usd`` more passes the budget, compared at a millionth of a
    dollar: in binary floating point fifty reserves of $0.02 add up to more than $1.00. The
    accept function in Postgres compares the same way (migration 0023)."""
    return round(spent_usd + reserve_usd, 6) > round(budget_usd, 6)


AcceptOutcome = Literal[
    "accepted", "existing", "user_budget", "global_budget", "active_cap", "daily_quota", "not_found", "busy"
]


@dataclass(frozen=True)
class RegenerationSource:
    """What a week of a complete plan is written again from: the plan as it stands, the skeleton it
    was written against (None: written in one call) and the profile of the request that made it."""

    plan: WorkoutPlan
    skeleton: PlanSkeleton | None
    user_profile: str
    system_prompt: str | None
    revision: int = 0  # which writing of the plan this is (``WeekRequested.plan_revision``)


@dataclass(frozen=True)
class Admission:
    """What ``RequestRepository.accept`` found and did, in one indivisible step.

    ``accepted``: the request and its outbox row (``outbox_id``) are stored. ``existing``: the
    ``Idempotency-Key`` already names ``prior``; nothing stored. ``user_budget`` /
    ``global_budget``: ``spent_usd`` (reservations included) leaves no room for another request.
    ``active_cap``: the user has ``active`` requests processing. ``daily_quota``: the oldest of the
    user's last ``max_per_day`` requests leaves the 24-hour window in ``wait_seconds``. For a week
    written again only: ``not_found`` (the plan is not the user's, or not complete) and ``busy``
    (``prior`` names the regeneration of the same plan still in flight).
    """

    outcome: AcceptOutcome
    prior: PriorRequest | None = None
    spent_usd: float | None = None
    active: int | None = None
    wait_seconds: float | None = None
    outbox_id: int | None = None


@dataclass(frozen=True)
class ReviewState:
    """A request as a decision on its skeleton needs it: where it stands, what it was made with, the
    skeleton shown (``outline``, while ``waiting``) and the adjustments so far."""

    snapshot: RequestSnapshot
    user_profile: str
    system_prompt: str | None
    review_seconds: int
    review_round: int
    adjustments: tuple[str, ...]
    review_until: datetime | None
    outline: PlanOutline | None


class Reviewing(Protocol):
    """One transaction holding one request's lock, for a decision on its skeleton."""

    @property
    def current(self) -> ReviewState: ...

    async def decide(
        self, action: Literal["confirm", "adjust"], round_: int, adjustments: tuple[str, ...]
    ) -> RequestSnapshot:
        """Record the decision: the request leaves ``waiting`` (stage ``queued``)."""
        ...

    async def stage(self, event: Event) -> int: ...


class Cancelling(Protocol):
    """One transaction holding one request's lock (the persister takes it before every write)."""

    @property
    def current(self) -> RequestSnapshot: ...

    async def mark_cancelled(self) -> RequestSnapshot: ...

    async def stage(self, event: Event) -> int: ...


class RequestRepository(Protocol):
    """Port to the requests' record of truth. Reads are scoped to the calling user; an outage
    raises ``Unavailable``."""

    async def accept(
        self, event: PlanRequested, payload: str, idempotency_key: str | None, limits: Limits
    ) -> Admission:
        """In one step, under the user's lock (and, with a global budget, a global one): the key's
        first request if there is one, else the checks in ``Limits``' order, and when they pass
        the request stored ``processing`` with ``payload`` (``event`` as published) in the outbox."""
        ...

    async def accept_week(
        self, event: WeekRequested, payload: str, idempotency_key: str | None, limits: Limits
    ) -> Admission:
        """``accept`` for a week written again, in the same step: the key's first request if there is
        one, else ``not_found`` / ``busy`` (one regeneration of a plan at a time), else ``accept``'s
        checks, and the request stored marked with the plan and week it rewrites (and ``payload``)."""
        ...

    async def regeneration_source(self, user_id: UUID, plan_id: UUID) -> RegenerationSource | None:
        """The user's complete plan as a week is written again from; None otherwise."""
        ...

    async def week_history(self, user_id: UUID, plan_id: UUID, week: int) -> WeekHistory | None:
        """Every version of a week of the user's complete plan, oldest first; None otherwise."""
        ...

    def reviewing(self, user_id: UUID, request_id: UUID) -> AbstractAsyncContextManager[Reviewing | None]:
        """A transaction holding the user's request locked; None when it is not theirs or does not exist."""
        ...

    async def get_review(self, user_id: UUID, request_id: UUID) -> ReviewState | None:
        """The user's request with its skeleton review, or None when it is not theirs or does not exist."""
        ...

    def cancelling(self, user_id: UUID, request_id: UUID) -> AbstractAsyncContextManager[Cancelling | None]:
        """A transaction holding the user's request locked; None when it is not theirs or does not exist."""
        ...

    def confirm_later(self, outbox_id: int) -> None:
        """The staged event is published: forget it soon, in a batch with others (until then the
        relay, which only takes rows a few seconds old, leaves it alone)."""
        ...

    async def get_request(self, user_id: UUID, request_id: UUID) -> RequestSnapshot | None: ...

    async def list_requests(self, user_id: UUID, *, limit: int, after: UUID | None) -> Sequence[RequestSnapshot]:
        """Up to ``limit`` of the user's requests, newest first; with ``after``, those older than that
        request (none when ``after`` is not one of the user's requests)."""
        ...

    async def get_plan(self, user_id: UUID, plan_id: UUID) -> PlanView | None:
        """The user's plan when it is complete; None otherwise, or when it is someone else's."""
        ...
