"""Persisting plans: store what arrives, in any order, and complete a request exactly once.

A plan needs every exercise it uses to have a profile. ``plan.generated`` and the
``exercise.profiled`` events arrive in any order, on any replica, possibly at once; the store
serialises each request's completeness check (see ``PostgresPlanStore``), so whichever event
arrives last completes the plan, and the request's status turns ``completed`` in that same
transaction, last.
"""

from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

from contracts.events import ExerciseProfiled, PlanFailed, PlanGenerated, PlanPersisted
from service_runtime.bus import EventPublisher


@dataclass(frozen=True)
class Completion:
    """A request whose plan is complete and whose status is ``completed``."""

    request_id: UUID
    user_id: UUID
    plan_id: UUID


class PlanStore(Protocol):
    """Port to the record of truth. Every method is idempotent under redelivery."""

    async def store_plan(self, event: PlanGenerated) -> Completion | None: ...

    async def store_profile(self, event: ExerciseProfiled) -> Completion | None: ...

    async def mark_failed(self, event: PlanFailed) -> None: ...


class Persisting:
    """The persister's use cases."""

    def __init__(self, store: PlanStore, publisher: EventPublisher) -> None:
        self._store = store
        self._publisher = publisher

    async def plan_generated(self, event: PlanGenerated) -> None:
        await self._announce(await self._store.store_plan(event))

    async def exercise_profiled(self, event: ExerciseProfiled) -> None:
        await self._announce(await self._store.store_profile(event))

    async def plan_failed(self, event: PlanFailed) -> None:
        await self._store.mark_failed(event)

    async def _announce(self, completion: Completion | None) -> None:
        # Also on a repeat delivery of an already completed request: if the first attempt
        # committed but crashed before publishing, this is the publish that was missing.
        # Nats-Msg-Id drops the duplicate otherwise.
        if completion is not None:
            await self._publisher.publish(
                PlanPersisted(request_id=completion.request_id, user_id=completion.user_id, plan_id=completion.plan_id)
            )
