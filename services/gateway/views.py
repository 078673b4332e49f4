"""What the gateway answers with: read models of requests and plans, shaped for the app.

The Postgres adapter builds them straight from SQL (no domain objects on the read side), the use
case hands them on, the routes return them, and FastAPI serialises them with Pydantic.
"""

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from contracts.plan import PlanOutline, PrescribedExercise, TrainingDay, TrainingWeek, WorkoutPlan
from contracts.progress import RequestStatus

__all__ = [
    "ACCEPTED_MESSAGE",
    "DayView",
    "EntryView",
    "ExerciseView",
    "PlanAccepted",
    "PlanView",
    "RequestPage",
    "RequestSnapshot",
    "RequestWeeks",
    "ShownWeek",
    "SkeletonReview",
    "WeekAccepted",
    "WeekHistory",
    "WeekVersionView",
    "WeekView",
]

ACCEPTED_MESSAGE = "Workout plan generation started. You will be notified when complete."


class _View(BaseModel):
    model_config = ConfigDict(frozen=True)


# An ``Idempotency-Key`` retry answers with the request's real status, not "processing" forever.
_ENDED_MESSAGES: dict[RequestStatus, str] = {
    "processing": ACCEPTED_MESSAGE,
    "completed": "Workout plan generation already completed.",
    "failed": "Workout plan generation already failed; GET /v1/requests/{request_id} says why.",
    "cancelled": "Workout plan generation was cancelled.",
}


class PlanAccepted(_View):
    """The 202 reply of the original edge function, unchanged; a retry (``Idempotency-Key``) of a
    request that already ended gets 200 with its final ``status``."""

    request_id: UUID
    status: RequestStatus = "processing"
    message: str = ACCEPTED_MESSAGE

    @classmethod
    def of(cls, request_id: UUID, status: RequestStatus) -> "PlanAccepted":
        return cls(request_id=request_id, status=status, message=_ENDED_MESSAGES[status])


class RequestSnapshot(_View):
    """Where a request stands now."""

    request_id: UUID
    status: RequestStatus
    stage: str
    error: str | None
    plan_id: UUID | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


class RequestPage(_View):
    """A page of the caller's requests, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[RequestSnapshot]
    next_cursor: UUID | None


class ExerciseView(_View):
    key: str
    name: str
    profile: dict[str, Any] | None


class EntryView(_View):
    position: int
    exercise: ExerciseView
    sets: int
    reps: str
    rest_seconds: int
    notes: str


class DayView(_View):
    day: int
    focus: str
    entries: list[EntryView]


class WeekView(_View):
    week: int
    theme: str
    days: list[DayView]


class PlanView(_View):
    """A completed plan: weeks, then days, then entries in the order the plan prescribes them."""

    plan_id: UUID
    request_id: UUID
    title: str
    summary: str
    created_at: datetime
    completed_at: datetime | None
    weeks: list[WeekView]

    def as_written(self) -> WorkoutPlan:
        """The plan as its model wrote it: each entry back to its prescription (the catalogue's name)."""
        return WorkoutPlan(
            title=self.title,
            summary=self.summary,
            weeks=[
                TrainingWeek(
                    week=week.week,
                    theme=week.theme,
                    days=[
                        TrainingDay(
                            day=day.day,
                            focus=day.focus,
                            exercises=[
                                PrescribedExercise(
                                    name=entry.exercise.name,
                                    sets=entry.sets,
                                    reps=entry.reps,
                                    rest_seconds=entry.rest_seconds,
                                    notes=entry.notes,
                                )
                                for entry in day.entries
                            ],
                        )
                        for day in week.days
                    ],
                )
                for week in self.weeks
            ],
        )


class ShownWeek(_View):
    """A week written and checked against its plan's skeleton, shown before the plan is complete."""

    week: int
    version: int
    theme: str
    days: list[TrainingDay]
    shown_at: datetime


class RequestWeeks(_View):
    """The weeks of a request shown so far. ``provisional``: the request is still ``processing``,
    and these weeks may yet change (a later version) or come to nothing (a failed or cancelled
    request leaves no plan); once ``completed``, the plan of record is ``GET /v1/plans/{plan_id}``
    and no provisional weeks are listed, nor for a request that failed or was cancelled."""

    request_id: UUID
    status: RequestStatus
    plan_id: UUID | None
    provisional: bool
    weeks: list[ShownWeek]


class SkeletonReview(_View):
    """A request's skeleton shown to the user before its weeks are written. While ``stage`` is
    ``waiting`` the user may confirm or adjust it (``POST /v1/requests/{id}/skeleton``) until
    ``review_until``, when it goes on by itself; ``outline`` is None until one is written (and while
    an adjusted one is being written)."""

    request_id: UUID
    status: RequestStatus
    stage: str
    review_seconds: int
    round: int
    adjustments: list[str]
    review_until: datetime | None
    outline: PlanOutline | None


class WeekAccepted(PlanAccepted):
    """A week of a plan being written again: follow ``request_id`` like any request; once it is
    ``completed`` the plan (``GET /v1/plans/{plan_id}``) has the new week."""

    plan_id: UUID
    week: int

    @classmethod
    def of_week(cls, request_id: UUID, status: RequestStatus, plan_id: UUID, week: int) -> "WeekAccepted":
        message = (
            f"Week {week} is being written again. You will be notified when it is in the plan."
            if status == "processing"
            else _ENDED_MESSAGES[status]
        )
        return cls(request_id=request_id, status=status, message=message, plan_id=plan_id, week=week)


class WeekVersionView(_View):
    """One version of a week. Version 1 is the week as the plan was first written; each later one
    was written again on request (``instruction``: what the user asked for, if anything)."""

    version: int
    current: bool
    theme: str
    days: list[TrainingDay]
    instruction: str | None
    request_id: UUID | None
    quality: dict[str, float] | None
    current_from: datetime | None


class WeekHistory(_View):
    """Every version of one week of a plan, oldest first; the ``current`` one is in the plan."""

    plan_id: UUID
    week: int
    current_version: int
    versions: list[WeekVersionView]
