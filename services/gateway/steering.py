"""The gateway's use cases for steering a plan: the skeleton shown first, and a week redone.

Both follow the same rules as ``requests.PlanRequests``: reads and writes scoped to the caller,
every event staged in the outbox with the row it announces, then published. A decision on a
skeleton is taken under the request's lock; a week written again is a request of its own, accepted
in one step with the plan's checks (the caller's, complete, no other regeneration of it in flight)
and the same caps, quota and budgets as a plan request.
"""

import logging
from typing import Literal
from uuid import UUID

from contracts.events import Lane, PlanRequested, ReviewDecision, WeekRequested
from contracts.progress import PlanProgress
from service_runtime.bus import ProgressAnnouncer
from service_runtime.ids import uuid7
from service_runtime.logs import bind_request_id
from services.gateway.repository import RequestRepository, ReviewState
from services.gateway.requests import (
    Acceptance,
    IdempotencyConflict,
    NotWaiting,
    Quotas,
    RegenerationInProgress,
    StagedEvents,
    limits_of,
    refusal,
)
from services.gateway.views import RequestSnapshot, WeekHistory

__all__ = ["PlanSteering"]

log = logging.getLogger(__name__)


class PlanSteering:
    """Decisions on a skeleton shown first, and weeks written again."""

    def __init__(
        self, repository: RequestRepository, staged: StagedEvents, progress: ProgressAnnouncer, quotas: Quotas
    ) -> None:
        self._repository = repository
        self._staged = staged
        self._progress = progress
        self._quotas = quotas
        self._limits = limits_of(quotas)

    async def regenerate_week(
        self,
        *,
        user_id: UUID,
        plan_id: UUID,
        week: int,
        instruction: str | None,
        idempotency_key: str | None = None,
        lane: Lane = "standard",
    ) -> Acceptance | None:
        """Store a ``processing`` request to write one week of the user's complete plan again, and
        announce it with ``plan.week.requested``; None when the plan is not theirs or not complete.

        Counted like a plan request (caps, quota, budgets: ``QuotaExceeded``); one at a time per
        plan (``RegenerationInProgress``); an ``Idempotency-Key`` is scoped to the plan and week,
        and a repeat with another instruction raises ``IdempotencyConflict``."""
        source = await self._repository.regeneration_source(user_id, plan_id)
        if source is None:
            return None
        request_id = uuid7()
        bind_request_id(request_id)
        event = WeekRequested(
            request_id=request_id,
            user_id=user_id,
            plan_id=plan_id,
            week=week,
            instruction=instruction,
            user_profile=source.user_profile,
            system_prompt=source.system_prompt,
            plan=source.plan,
            skeleton=source.skeleton,
            plan_revision=source.revision,
            lane=lane,
        )
        key = None if idempotency_key is None else f"week:{plan_id}:{week}:{idempotency_key}"
        admission = await self._repository.accept_week(event, event.wire.decode(), key, self._limits)
        if admission.outcome == "not_found":
            return None
        if admission.outcome == "existing":
            prior = admission.prior
            assert prior is not None
            if prior.user_profile != (instruction or ""):
                raise IdempotencyConflict(idempotency_key or "")
            return Acceptance(prior.request_id, prior.status)
        if admission.outcome == "busy":
            assert admission.prior is not None
            raise RegenerationInProgress(admission.prior.request_id)
        if admission.outcome != "accepted":
            raise refusal(admission, self._quotas)
        assert admission.outbox_id is not None
        await self._staged.publish(event, admission.outbox_id)
        log.info("accepted request %s: week %d of plan %s again", request_id, week, plan_id)
        return Acceptance(request_id)

    async def week_history(self, user_id: UUID, plan_id: UUID, week: int) -> WeekHistory | None:
        """Every version of a week of the user's complete plan; None when it is not theirs or not complete."""
        return await self._repository.week_history(user_id, plan_id, week)

    async def review_skeleton(
        self,
        user_id: UUID,
        request_id: UUID,
        *,
        decision: Literal["confirm", "adjust"],
        instruction: str | None,
        lane: Lane = "standard",
    ) -> RequestSnapshot | None:
        """The user's decision on the skeleton their request is ``waiting`` with: ``confirm`` (write the
        weeks against it) or ``adjust`` (write it again with ``instruction``, then show it again). None
        when the request is not theirs; ``NotWaiting`` when it is not waiting for a decision."""
        async with self._repository.reviewing(user_id, request_id) as locked:
            if locked is None:
                return None
            state = locked.current
            if state.snapshot.status != "processing" or state.snapshot.stage != "waiting":
                raise NotWaiting(state.snapshot.status, state.snapshot.stage)
            adjusting = decision == "adjust"
            adjustments = (*state.adjustments, instruction or "") if adjusting else state.adjustments
            round_ = state.review_round + 1 if adjusting else state.review_round
            snapshot = await locked.decide(decision, round_, adjustments)
            event = PlanRequested(
                request_id=request_id,
                user_id=user_id,
                user_profile=state.user_profile,
                system_prompt=state.system_prompt,
                review_seconds=state.review_seconds,
                review=ReviewDecision(action=decision, round=round_, adjustments=adjustments),
                lane=lane,
            )
            outbox_id = await locked.stage(event)
        await self._staged.publish(event, outbox_id)
        await self._progress.announce(PlanProgress(request_id=request_id, status="processing", stage="queued"))
        log.info("request %s: skeleton round %d %sed", request_id, state.review_round, decision)
        return snapshot

    async def get_review(self, user_id: UUID, request_id: UUID) -> ReviewState | None:
        """The user's request with the skeleton it shows them, or None when it is not theirs."""
        return await self._repository.get_review(user_id, request_id)
