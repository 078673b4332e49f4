"""The gateway's port to its database: what the use case (``services.gateway.requests``) needs of it.

``RequestRepository`` has one real adapter (``services.gateway.postgres``) and one fake
(``services.gateway.memory``). Its transactions serialise what the rules need serialised; an
outage raises ``services.gateway.requests.Unavailable``.
"""

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from contracts.events import Event, PlanRequested
from contracts.progress import RequestStatus
from services.gateway.views import PlanView, RequestSnapshot

__all__ = ["Admission", "Cancelling", "Creating", "PriorRequest", "RequestRepository"]


@dataclass(frozen=True)
class PriorRequest:
    """The request a user's ``Idempotency-Key`` already names, with the body it was made with."""

    request_id: UUID
    status: RequestStatus
    user_profile: str
    system_prompt: str | None


@dataclass(frozen=True)
class Admission:
    """What ``Creating.insert_within_caps`` saw and did, in one step.

    ``active``: the user's requests ``processing`` before this one. ``wait_seconds``: how long
    until the oldest of the user's last ``max_per_day`` requests leaves the 24-hour window, or
    None when fewer than that many are in it. ``inserted``: whether the request was stored.
    """

    inserted: bool
    active: int
    wait_seconds: float | None


class Creating(Protocol):
    """One transaction that may create a request for one user. The user's other creations wait
    until it ends, so what it reads stays true until it commits."""

    async def find_by_idempotency_key(self, key: str) -> PriorRequest | None: ...

    async def spent_by_user(self, reserve_usd: float) -> float:
        """USD the user's requests of the last 24 hours cost, each ``processing`` one at least ``reserve_usd``."""
        ...

    async def spent_by_everyone(self, reserve_usd: float) -> float:
        """``spent_by_user`` over every user; from here on every creation waits for this transaction."""
        ...

    async def insert_within_caps(
        self, event: PlanRequested, idempotency_key: str | None, *, max_active: int, max_per_day: int
    ) -> Admission:
        """Store ``event``'s request as ``processing`` only if the user has fewer than ``max_active``
        requests processing and fewer than ``max_per_day`` in the last 24 hours: one indivisible step."""
        ...

    async def stage(self, event: Event) -> int:
        """Keep ``event`` in the outbox, committed with this transaction; return its outbox id."""
        ...


class Cancelling(Protocol):
    """One transaction holding one request's lock (the persister takes it before every write)."""

    @property
    def current(self) -> RequestSnapshot: ...

    async def mark_cancelled(self) -> RequestSnapshot: ...

    async def stage(self, event: Event) -> int: ...


class RequestRepository(Protocol):
    """Port to the requests' record of truth. Reads are scoped to the calling user; an outage
    raises ``Unavailable``."""

    def creating(self, user_id: UUID) -> AbstractAsyncContextManager[Creating]:
        """A transaction for one creation of ``user_id``'s; it commits when the block ends cleanly."""
        ...

    def cancelling(self, user_id: UUID, request_id: UUID) -> AbstractAsyncContextManager[Cancelling | None]:
        """A transaction holding the user's request locked; None when it is not theirs or does not exist."""
        ...

    async def confirm(self, outbox_id: int) -> None:
        """The staged event is published: forget it."""
        ...

    async def get_request(self, user_id: UUID, request_id: UUID) -> RequestSnapshot | None: ...

    async def list_requests(self, user_id: UUID, *, limit: int, after: UUID | None) -> Sequence[RequestSnapshot]:
        """Up to ``limit`` of the user's requests, newest first; with ``after``, those older than that
        request (none when ``after`` is not one of the user's requests)."""
        ...

    async def get_plan(self, user_id: UUID, plan_id: UUID) -> PlanView | None:
        """The user's plan when it is complete; None otherwise, or when it is someone else's."""
        ...
