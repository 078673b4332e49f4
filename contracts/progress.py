"""Progress notices: where one request stands, for the apps that watch it live.

Unlike events, notices drive no work and may be lost: Postgres stays the record of truth and a
reader falls back to a snapshot. Each goes to ``progress.<request_id>`` in the progress stream,
whose sequence numbers are the ids a server-sent-events client resumes from.

A notice may carry a week (``week``, ``week_version``): written and checked against the plan's
skeleton, shown before the plan is complete and *provisional* until then. It becomes part of a plan
only when the request ends ``completed`` (the persister stores the whole plan in one transaction);
a request that ends ``failed`` or ``cancelled`` has no plan, and its weeks stay notices. A week
written again (the plan's weeks did not fit together) comes with the next ``week_version``.

At stage ``waiting`` (a request that asked to see its skeleton first) a notice carries the skeleton
(``outline``) and when the request goes on by itself (``review_until``).
"""

from datetime import UTC, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from contracts.plan import PLAN_WEEKS, PlanOutline, TrainingWeek

RequestStatus = Literal["processing", "completed", "failed", "cancelled"]
TERMINAL_STATUSES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})

Stage = Literal["queued", "generating", "waiting", "generated", "profiling", "completed", "failed", "cancelled"]


def _now() -> datetime:
    return datetime.now(UTC)


class PlanProgress(BaseModel):
    """One step of a request: its status, the stage it reached, and how far profiling got."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    schema_version: int = 1
    request_id: UUID
    status: RequestStatus
    stage: Stage
    weeks_done: int | None = Field(None, ge=0, le=PLAN_WEEKS, description="Weeks written so far.")
    week: TrainingWeek | None = Field(None, description="A week just written and checked: provisional until completed.")
    week_version: int | None = Field(None, ge=1, description="1 for a week's first writing, then one more per rewrite.")
    exercises_total: int | None = Field(None, ge=0, description="Distinct exercises the plan uses, once known.")
    exercises_profiled: int | None = Field(None, ge=0, description="How many of them have a profile.")
    outline: PlanOutline | None = Field(
        None, description="At stage 'waiting': the skeleton the user is asked to review."
    )
    review_until: datetime | None = Field(None, description="At stage 'waiting': when it goes on without a decision.")
    queue_position: int | None = Field(
        None, ge=1, description="While the plan's calls wait for the provider's budget: its place in line (1: next)."
    )
    expected_wait_seconds: float | None = Field(
        None, ge=0, description="While the plan's calls wait for the provider's budget: how long until its turn."
    )
    plan_id: UUID | None = None
    error: str | None = None
    occurred_at: datetime = Field(default_factory=_now)
