"""Events: immutable, past-tense facts, one model per subject.

Evolve them additively (new fields get defaults); readers ignore fields they do not know.
``dedup_id`` is the ``Nats-Msg-Id`` a publisher sends, so a re-publish of the same fact
inside the stream's duplicate window is dropped by JetStream.
"""

from datetime import UTC, datetime
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal, Self
from uuid import UUID

import orjson
from pydantic import BaseModel, ConfigDict, Field

from contracts import subjects
from contracts.plan import PLAN_WEEKS, ExerciseProfile, PlanOutline, PlanSkeleton, TrainingWeek, WorkoutPlan


def _now() -> datetime:
    return datetime.now(UTC)


# A user's lane (a claim in their token): "priority" calls are admitted first when the provider's
# budget is short (``service_runtime.llm.budget``).
Lane = Literal["standard", "priority"]


class Event(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    subject: ClassVar[str]

    schema_version: int = 1
    request_id: UUID
    occurred_at: datetime = Field(default_factory=_now)

    @property
    def dedup_id(self) -> str:
        return f"{self.subject}:{self.request_id}"

    @classmethod
    def read(cls, data: bytes) -> Self:
        """The event from its wire form; ``ValueError`` (a pydantic ``ValidationError`` among them)
        when it is not one."""
        return cls.model_validate_json(data)

    @cached_property
    def wire(self) -> bytes:
        """The event as it is published (and kept in an outbox): serialised once."""
        return self.model_dump_json().encode()


MAX_REVIEW_SECONDS = 3600


class ReviewDecision(BaseModel):
    """What became of a skeleton shown to the user: ``confirm``ed, ``adjust``ed in words (the skeleton
    is written again with every adjustment so far, in order), or left to ``timeout``."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    action: Literal["confirm", "adjust", "timeout"]
    round: int = Field(
        0, ge=0, description="The skeleton's writing the weeks follow: 0 the first, n after n adjustments."
    )
    adjustments: tuple[str, ...] = ()


class PlanRequested(Event):
    """The gateway accepted a request and stored it as ``processing`` (or, with ``review``, the user
    decided on its skeleton: the planner goes on from there)."""

    subject: ClassVar[str] = subjects.PLAN_REQUESTED

    user_id: UUID
    user_profile: str
    system_prompt: str | None = None
    lane: Lane = Field("standard", description="Whose calls go first when the provider's budget is short.")
    redrive: int = Field(0, ge=0, description="0 when the gateway accepted it; n for the sweeper's n-th re-drive.")
    review_seconds: int = Field(
        0, ge=0, le=MAX_REVIEW_SECONDS, description="Stop after the skeleton this long for the user's review; 0: don't."
    )
    review: ReviewDecision | None = None

    @property
    def dedup_id(self) -> str:
        # The request id itself, as the app-facing contract promises; a re-drive or a decision on the
        # skeleton must not be dropped as a duplicate of the original, so each carries its own suffix.
        base = str(self.request_id)
        if self.review is not None:
            base = f"{base}:review:{self.review.round}:{self.review.action}"
        return base if self.redrive == 0 else f"{base}:redrive:{self.redrive}"


class PlanAwaitingReview(Event):
    """The planner wrote the skeleton of a request that asked to see it first, and stopped: the
    user confirms it, adjusts it, or lets it go on after ``review_seconds``."""

    subject: ClassVar[str] = subjects.PLAN_AWAITING_REVIEW

    user_id: UUID
    outline: PlanOutline = Field(description="The skeleton: days per week, each block's days and exercises, each week.")
    round: int = Field(0, ge=0, description="0 for the first skeleton, n after n adjustments.")
    review_seconds: int = Field(ge=1, le=MAX_REVIEW_SECONDS)

    @property
    def dedup_id(self) -> str:
        return f"{self.subject}:{self.request_id}:{self.round}"


class ExerciseRef(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    key: str = Field(description="Normalised catalogue key shared by every plan that uses the exercise.")
    name: str = Field(description="The name as the plan spells it.")


class LlmUsage(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # of prompt_tokens, served from the provider's prompt cache
    calls: int = 1


class LlmCallRecorded(Event):
    """One paid LLM call, for the cost ledger: recorded as soon as the provider answered, whatever
    became of the reply (used, rejected as invalid, or abandoned with its delivery)."""

    subject: ClassVar[str] = subjects.LLM_CALL_RECORDED

    call_id: UUID
    stage: Literal["planner", "profiler"]
    model: str
    outcome: str = Field(description="ok, invalid_reply, or a failure class (see service_runtime.llm.errors).")
    prompt_tokens: int = Field(0, ge=0)
    completion_tokens: int = Field(0, ge=0)
    cached_tokens: int = Field(0, ge=0, description="Prompt tokens the provider served from its cache.")
    service_tier: Literal["default", "flex", "priority", "batch"] = Field(
        "default",
        description="The tier that served the call (the provider's reply says), or the Batch API: it sets the price.",
    )
    seconds: float = Field(0.0, ge=0)
    cost_usd: float = Field(0.0, ge=0, description="At the recording service's price table.")

    @property
    def dedup_id(self) -> str:
        return f"{self.subject}:{self.call_id}"


# What ``PlanGenerated.quality`` scores (services/planner/scores.py), each in [0, 1], besides "overall".
QUALITY_DIMENSIONS = ("days", "progression", "deload", "rest", "equipment", "injury", "variety")


class PlanGenerated(Event):
    """The planner has a validated 8-week plan for the request."""

    subject: ClassVar[str] = subjects.PLAN_GENERATED

    user_id: UUID
    plan: WorkoutPlan
    exercises: tuple[ExerciseRef, ...] = Field(
        description="Every distinct exercise name the plan uses, with its catalogue key (names may share a key)."
    )
    usage: LlmUsage
    prompt_version: str = Field("", description="The prompt files the plan was written with, e.g. 'plan-v1'.")
    calls: tuple[LlmCallRecorded, ...] = Field(
        (),
        description="The ledger records of the paid calls whose replies made this plan (kept with each part),"
        " stored with it; calls whose replies were not kept are published as llm.call.recorded on their own.",
    )
    quality: dict[str, float] = Field(
        default_factory=dict,
        description="Quality scores in [0, 1] by dimension, and 'overall' (services/planner/scores.py).",
    )
    skeleton: PlanSkeleton | None = Field(None, description="What the weeks were written against; None in one call.")


class TrustedPlanGenerated(Event):
    """``plan.generated`` as its consumer reads it when it trusts the planner (the persister): every
    field checked as ``PlanGenerated`` checks it but ``plan`` and ``skeleton``, kept as the JSON
    objects the planner wrote. The planner built those from a ``WorkoutPlan`` and a
    ``PlanSkeleton`` it had validated; building the ~180 models of a plan again cost the persister
    ~0.3 ms, a tenth of its CPU per plan (``python -m bench.persister_rate``), to store the same
    JSON. What relies on their shape says so where a mistake would otherwise pass: the persister
    refuses a plan whose weeks, days and exercises are not there (``check_consistent``), and one
    whose values do not fit their columns fails its write (alone: ``Grouped`` writes a failed
    group's items again one by one). ``test_contracts`` keeps the fields those of ``PlanGenerated``."""

    subject: ClassVar[str] = subjects.PLAN_GENERATED

    user_id: UUID
    plan: dict[str, Any]
    exercises: tuple[ExerciseRef, ...]
    usage: LlmUsage
    prompt_version: str = ""
    calls: tuple[LlmCallRecorded, ...] = ()
    quality: dict[str, float] = Field(default_factory=dict)
    skeleton: dict[str, Any] | None = None

    @classmethod
    def read(cls, data: bytes) -> Self:
        # Parsed by orjson, then validated from Python: the plan and skeleton's values are taken
        # as parsed (pydantic's JSON mode would walk them again as ``Any``, at twice the cost).
        return cls.model_validate(orjson.loads(data))

    @classmethod
    def of(cls, event: PlanGenerated) -> Self:
        """``event`` as it reaches a consumer reading it this way."""
        return cls.read(event.wire)


class ExerciseProfileNeeded(Event):
    """A plan uses this exercise; its profile must reach the persister."""

    subject: ClassVar[str] = subjects.EXERCISE_PROFILE_NEEDED

    exercise: ExerciseRef
    redrive: int = Field(0, ge=0, description="n for the sweeper's n-th re-drive of this request's profiles.")

    @property
    def dedup_id(self) -> str:
        base = f"{self.subject}:{self.request_id}:{self.exercise.key}"
        return base if self.redrive == 0 else f"{base}:redrive:{self.redrive}"


class ExerciseProfiled(Event):
    """A profile for one exercise of one request is ready (from the cache or a fresh LLM call)."""

    subject: ClassVar[str] = subjects.EXERCISE_PROFILED

    exercise: ExerciseRef
    profile: ExerciseProfile
    source: Literal["cache", "llm"]
    usage: LlmUsage | None = None

    @property
    def dedup_id(self) -> str:
        return f"{self.subject}:{self.request_id}:{self.exercise.key}"


class PlanPersisted(Event):
    """The plan and all its exercise profiles are stored; the request is ``completed``."""

    subject: ClassVar[str] = subjects.PLAN_PERSISTED

    user_id: UUID
    plan_id: UUID


FailureStage = Literal["gateway", "planner", "profiler", "persister"]


class PlanFailed(Event):
    """A stage gave up on the request for good; the persister marks it ``failed``."""

    subject: ClassVar[str] = subjects.PLAN_FAILED

    stage: FailureStage
    reason: Annotated[str, Field(description="Short machine-readable cause, e.g. 'invalid_llm_reply'.")]
    detail: str = ""


class PlanCancelled(Event):
    """The user cancelled the request (the gateway already stored it as ``cancelled``): spend no more on it."""

    subject: ClassVar[str] = subjects.PLAN_CANCELLED

    user_id: UUID


class WeekRequested(Event):
    """The user asked for one week of their completed plan to be written again (the gateway stored
    the request as ``processing``). Carries everything the week is written against, as it stood."""

    subject: ClassVar[str] = subjects.PLAN_WEEK_REQUESTED

    user_id: UUID
    plan_id: UUID
    week: int = Field(ge=1, le=PLAN_WEEKS)
    instruction: str | None = Field(None, description="What the user wants changed, in their words.")
    user_profile: str = Field(description="The profile the plan was written for.")
    system_prompt: str | None = None
    plan: WorkoutPlan = Field(description="The plan as it stands, every week.")
    skeleton: PlanSkeleton | None = Field(None, description="What the plan was written against; None in one call.")
    plan_revision: int = Field(
        0, ge=0, description="Which writing of the plan ``plan`` is: its weeks written again so far, as stored."
    )
    lane: Lane = Field("standard", description="Whose calls go first when the provider's budget is short.")
    redrive: int = Field(0, ge=0, description="0 when the gateway accepted it; n for the sweeper's n-th re-drive.")

    @property
    def dedup_id(self) -> str:
        base = f"{self.subject}:{self.request_id}"
        return base if self.redrive == 0 else f"{base}:redrive:{self.redrive}"


class WeekGenerated(Event):
    """The planner wrote the requested week again and it passed its checks, within the plan."""

    subject: ClassVar[str] = subjects.PLAN_WEEK_GENERATED

    user_id: UUID
    plan_id: UUID
    week: TrainingWeek
    instruction: str | None = None
    plan_revision: int = Field(0, ge=0, description="The writing of the plan the week was checked within.")
    exercises: tuple[ExerciseRef, ...] = Field(description="Every distinct exercise name the week uses, with its key.")
    usage: LlmUsage
    prompt_version: str = ""
    calls: tuple[LlmCallRecorded, ...] = Field((), description="The ledger records of the calls that wrote it.")
    quality: dict[str, float] = Field(
        default_factory=dict, description="The plan's quality scores with this week in it (services/planner/scores.py)."
    )


EVENTS: tuple[type[Event], ...] = (
    PlanRequested,
    PlanGenerated,
    ExerciseProfileNeeded,
    ExerciseProfiled,
    PlanPersisted,
    PlanFailed,
    PlanCancelled,
    LlmCallRecorded,
    WeekRequested,
    WeekGenerated,
    PlanAwaitingReview,
)
