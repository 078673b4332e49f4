"""The gateway's use case: accept, cancel and read plan requests, whatever database holds them.

The rules live here: an ``Idempotency-Key`` retry answers with the first request, per-user caps
and daily budgets refuse with 429 before anything is stored or spent, only a ``processing``
request can be cancelled, and every event is staged with the row it announces (the outbox)
before it is published. The database sits behind the port ``repository.RequestRepository``;
nothing here knows SQL or asyncpg.

Steering a plan (the skeleton shown first, a week redone) is ``steering.PlanSteering``, on the same
rules. The gateway writes request rows only: each at creation, and its ``cancelled`` status when the
user cancels; the persister owns every other write, plan data included.
"""

import asyncio
import logging
import math
from dataclasses import dataclass
from uuid import UUID

from contracts.events import Event, Lane, PlanCancelled, PlanRequested
from contracts.progress import PlanProgress, RequestStatus
from service_runtime.bus import EventPublisher, ProgressAnnouncer
from service_runtime.ids import uuid7
from service_runtime.logs import bind_request_id, reason
from service_runtime.metrics import PLANS_ACCEPTED, PLANS_CANCELLED, PLANS_REFUSED
from services.gateway.repository import Admission, Limits, RequestRepository
from services.gateway.views import PlanView, RequestSnapshot

__all__ = [
    "Acceptance",
    "IdempotencyConflict",
    "NotCancellable",
    "NotRegenerable",
    "NotWaiting",
    "PlanRequests",
    "QuotaExceeded",
    "Quotas",
    "RegenerationInProgress",
    "StagedEvents",
    "Unavailable",
    "limits_of",
    "refusal",
]

log = logging.getLogger(__name__)

_BUDGET_RETRY_AFTER_SECONDS = 3600


class IdempotencyConflict(Exception):
    """The caller reused an ``Idempotency-Key`` for a different request body."""


class Unavailable(Exception):
    """A dependency (the database or the event bus) cannot take the work now; nothing was stored."""


class QuotaExceeded(Exception):
    """The user may not start another plan now; nothing was stored. Try again after ``retry_after_seconds``."""

    def __init__(self, message: str, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_seconds = retry_after_seconds


class RegenerationInProgress(Exception):
    """A week of the same plan is already being written again; one at a time per plan."""

    def __init__(self, request_id: UUID) -> None:
        super().__init__(str(request_id))
        self.request_id = request_id


class NotRegenerable(Exception):
    """The stored plan cannot be written again week by week (it does not read back as a valid plan)."""


class NotWaiting(Exception):
    """The request is not waiting for a decision on its skeleton (never asked for one, decided already,
    or ended)."""

    def __init__(self, status: str, stage: str) -> None:
        super().__init__(f"{status}/{stage}")
        self.status = status
        self.stage = stage


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


class PlanRequests:
    """The gateway's use cases, announcing what they change through ``publisher`` and ``progress``."""

    def __init__(
        self,
        repository: RequestRepository,
        publisher: EventPublisher,
        progress: ProgressAnnouncer,
        quotas: Quotas,
        *,
        publish_wait_seconds: float = 1.0,
        default_review_seconds: int = 0,
    ) -> None:
        self._repository = repository
        self._publisher = publisher
        self._progress = progress
        self._quotas = quotas
        self._limits = limits_of(quotas)  # fixed, so built once
        self._staged = StagedEvents(repository, publisher, wait_seconds=publish_wait_seconds)
        self._default_review_seconds = default_review_seconds

    async def create_request(
        self,
        *,
        user_id: UUID,
        user_profile: str,
        system_prompt: str | None,
        idempotency_key: str | None = None,
        review_seconds: int | None = None,
    ) -> UUID:
        """``accept_request``'s request id."""
        accepted = await self.accept_request(
            user_id=user_id,
            user_profile=user_profile,
            system_prompt=system_prompt,
            idempotency_key=idempotency_key,
            review_seconds=review_seconds,
        )
        return accepted.request_id

    async def accept_request(
        self,
        *,
        user_id: UUID,
        user_profile: str,
        system_prompt: str | None,
        idempotency_key: str | None = None,
        review_seconds: int | None = None,
        lane: Lane = "standard",
    ) -> Acceptance:
        """Store a ``processing`` request and announce it with ``plan.requested``.

        With ``idempotency_key``, a repeat of the same user's key and body answers with the first
        request and its status now, stores nothing and spends no quota; the same key with another
        body raises ``IdempotencyConflict``. Over a cap or budget: ``QuotaExceeded``, nothing stored.
        ``review_seconds`` (None: the server's default) > 0 stops it after its skeleton for the user.
        """
        request_id = uuid7()  # time-ordered: see service_runtime/ids.py
        bind_request_id(request_id)  # this request's log lines, and its HTTP span, name it from here on
        event = PlanRequested(
            request_id=request_id,
            user_id=user_id,
            user_profile=user_profile,
            system_prompt=system_prompt,
            review_seconds=self._default_review_seconds if review_seconds is None else review_seconds,
            lane=lane,
        )
        # The row and its event commit together (the outbox), so an accepted request is never
        # lost: if the publish below fails or this process dies first, the relay publishes it.
        # Serialised once: the outbox keeps the very bytes that are published.
        admission = await self._repository.accept(event, event.wire.decode(), idempotency_key, self._limits)
        if admission.outcome == "existing":
            prior = admission.prior
            assert prior is not None
            if (prior.user_profile, prior.system_prompt) != (user_profile, system_prompt):
                raise IdempotencyConflict(idempotency_key or "")
            return Acceptance(prior.request_id, prior.status)
        if admission.outcome != "accepted":
            raise refusal(admission, self._quotas)
        assert admission.outbox_id is not None
        await self._staged.publish(event, admission.outbox_id)
        PLANS_ACCEPTED.inc()
        log.info("accepted request %s", request_id)
        return Acceptance(request_id)

    async def cancel_request(self, user_id: UUID, request_id: UUID) -> RequestSnapshot | None:
        """End the user's ``processing`` request ``cancelled`` and announce ``plan.cancelled``.

        None when the request does not exist or is someone else's; cancelling twice answers the
        same; a request that already ended ``completed`` or ``failed`` raises ``NotCancellable``.
        """
        async with self._repository.cancelling(user_id, request_id) as locked:
            # Under the request's lock, so the persister either finished first (and we see a
            # terminal status) or sees ``cancelled`` and drops its work.
            if locked is None:
                return None
            if locked.current.status == "cancelled":
                return locked.current
            if locked.current.status != "processing":
                raise NotCancellable(locked.current.status)
            cancelled = await locked.mark_cancelled()
            # The persister removes whatever part of the plan it already stored when this arrives.
            event = PlanCancelled(request_id=request_id, user_id=user_id)
            outbox_id = await locked.stage(event)
        await self._staged.publish(event, outbox_id)
        PLANS_CANCELLED.inc()
        await self._progress.announce(
            PlanProgress(request_id=request_id, status="cancelled", stage="cancelled", error=cancelled.error)
        )
        log.info("cancelled request %s", request_id)
        return cancelled

    async def get_request(self, user_id: UUID, request_id: UUID) -> RequestSnapshot | None:
        """The user's request, or None when it does not exist or belongs to someone else."""
        return await self._repository.get_request(user_id, request_id)

    async def list_requests(self, user_id: UUID, *, limit: int, after: UUID | None) -> list[RequestSnapshot]:
        """Up to ``limit`` of the user's requests, newest first, older than ``after`` when given."""
        return list(await self._repository.list_requests(user_id, limit=limit, after=after))

    async def get_plan(self, user_id: UUID, plan_id: UUID) -> PlanView | None:
        """The user's complete plan, or None (unknown, unfinished, or someone else's)."""
        return await self._repository.get_plan(user_id, plan_id)


def refusal(admission: Admission, quotas: Quotas) -> QuotaExceeded:
    """Why nothing was stored, in the user's words."""
    PLANS_REFUSED.labels(admission.outcome).inc()
    if admission.outcome == "user_budget":
        return QuotaExceeded(
            f"Your plans of the last 24 hours used (or reserved) ${admission.spent_usd or 0:.2f}"
            f" of your ${quotas.user_daily_budget_usd or 0:.2f} budget.",
            _BUDGET_RETRY_AFTER_SECONDS,
        )
    if admission.outcome == "global_budget":
        return QuotaExceeded(
            "The service has reached its spending limit for now; try again later.", _BUDGET_RETRY_AFTER_SECONDS
        )
    if admission.outcome == "active_cap":
        return QuotaExceeded(
            f"You already have {admission.active} plans being generated (at most {quotas.max_active});"
            " wait for one to finish or cancel one.",
            quotas.active_retry_after_seconds,
        )
    return QuotaExceeded(
        f"You started {quotas.max_per_day} plans in the last 24 hours, the most allowed.",
        max(1, math.ceil(admission.wait_seconds or 0)),
    )


def limits_of(quotas: Quotas) -> Limits:
    """What every creation is checked against, as the repository takes it."""
    return Limits(
        max_active=quotas.max_active,
        max_per_day=quotas.max_per_day,
        user_budget_usd=quotas.user_daily_budget_usd,
        global_budget_usd=quotas.global_daily_budget_usd,
        reserve_usd=quotas.plan_cost_estimate_usd,
    )


class StagedEvents:
    """Publishes events staged in the outbox with the rows they announce; one that does not go out
    within ``wait_seconds`` is left to the outbox relay."""

    def __init__(self, repository: RequestRepository, publisher: EventPublisher, *, wait_seconds: float) -> None:
        self._repository = repository
        self._publisher = publisher
        self._wait = wait_seconds

    async def publish(self, event: Event, outbox_id: int) -> None:
        try:
            # Bounded: with the broker away the app still gets its answer in about a second, and
            # the relay publishes later (a publish that did land is de-duplicated by JetStream).
            async with asyncio.timeout(self._wait):
                await self._publisher.publish(event)
            self._repository.confirm_later(outbox_id)
        except Exception as exc:
            log.warning("%s for %s left to the outbox relay: %s", event.subject, event.request_id, reason(exc))
