"""The 8-week plan as the LLM writes it and as ``plan.generated`` carries it.

The same models produce the structured-output JSON schema sent to the LLM, so what the model
is asked for and what we validate are one definition: the wire keeps what OpenAI's strict subset
accepts and restates the rest in words (``service_runtime.strict_schema``); these models enforce
all of it on the reply.

``max_output_tokens`` on a reply model bounds one call's output (``service_runtime.model_limits``):
about four times the largest reply the simulator writes for it (verbose notes included), so a
real reply never meets it and a runaway one stops there. None: as much as the model can write.
"""

from typing import Annotated, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

PLAN_WEEKS = 8


class _Reply(BaseModel):
    # Frozen and tolerant: extra keys in a reply are ignored, never stored.
    model_config = ConfigDict(frozen=True, extra="ignore")

    max_output_tokens: ClassVar[int | None] = None


class PrescribedExercise(_Reply):
    """One exercise as prescribed on one training day."""

    name: Annotated[str, Field(min_length=2, max_length=120, description="Exercise name, e.g. 'Barbell Back Squat'.")]
    sets: Annotated[int, Field(ge=1, le=10)]
    reps: Annotated[str, Field(min_length=1, max_length=40, description="Reps or duration, e.g. '8-10' or '30 s'.")]
    rest_seconds: Annotated[int, Field(ge=0, le=600)]
    notes: Annotated[str, Field(max_length=400, description="Tempo, load or form guidance.")]


class TrainingDay(_Reply):
    """One training day of a week (and, in progressive generation, one call's reply: a day, or some
    of its exercises)."""

    max_output_tokens = 4096  # largest seen: 1,012 (6 exercises, verbose notes)

    day: Annotated[int, Field(ge=1, le=7, description="Day of the week, 1 = Monday.")]
    focus: Annotated[str, Field(min_length=1, max_length=120)]
    exercises: Annotated[list[PrescribedExercise], Field(min_length=1, max_length=12)]


class TrainingWeek(_Reply):
    """One week of the programme."""

    max_output_tokens = 8192  # largest seen: 4,674 (6 days, verbose notes)

    week: Annotated[int, Field(ge=1, le=PLAN_WEEKS)]
    theme: Annotated[str, Field(min_length=1, max_length=160, description="e.g. 'Volume build' or 'Deload'.")]
    days: Annotated[list[TrainingDay], Field(min_length=1, max_length=7)]

    @model_validator(mode="after")
    def _days_are_distinct(self) -> "TrainingWeek":
        if len({d.day for d in self.days}) != len(self.days):
            raise ValueError(f"week {self.week} repeats a day: {[d.day for d in self.days]}")
        return self


class WorkoutPlan(_Reply):
    """A complete 8-week plan: exactly weeks 1..8, each with its training days."""

    title: Annotated[str, Field(min_length=1, max_length=160)]
    summary: Annotated[str, Field(min_length=1, max_length=2000)]
    weeks: Annotated[list[TrainingWeek], Field(min_length=PLAN_WEEKS, max_length=PLAN_WEEKS)]

    @model_validator(mode="after")
    def _weeks_are_one_to_eight(self) -> "WorkoutPlan":
        numbers = sorted(w.week for w in self.weeks)
        if numbers != list(range(1, PLAN_WEEKS + 1)):
            raise ValueError(f"a plan has weeks 1..{PLAN_WEEKS} exactly once each, got {numbers}")
        return self


class SkeletonDay(_Reply):
    """One training day of a block: its focus and the exercises it uses, in order."""

    day: Annotated[int, Field(ge=1, le=7, description="Day of the week, 1 = Monday.")]
    focus: Annotated[str, Field(min_length=1, max_length=120)]
    exercises: Annotated[list[str], Field(min_length=1, max_length=12, description="Exercise names, in order.")]


class SkeletonBlock(_Reply):
    """A run of weeks that share their days and exercises (progression changes the loading)."""

    weeks: Annotated[list[int], Field(min_length=1, max_length=PLAN_WEEKS, description="Week numbers, e.g. [1,2,3,4].")]
    days: Annotated[list[SkeletonDay], Field(min_length=1, max_length=7)]


class SkeletonWeek(_Reply):
    """What one week is for."""

    week: Annotated[int, Field(ge=1, le=PLAN_WEEKS)]
    theme: Annotated[str, Field(min_length=1, max_length=160)]
    deload: bool = Field(description="A lighter week: less volume than the week before.")


class PlanSkeleton(_Reply):
    """The program before its weeks are written: split, exercise selection, progression and deloads.

    Generated first; then each week is written against it, all weeks at once."""

    max_output_tokens = 4096  # largest seen: 901

    title: Annotated[str, Field(min_length=1, max_length=160)]
    summary: Annotated[str, Field(min_length=1, max_length=2000)]
    days_per_week: Annotated[int, Field(ge=1, le=7)]
    progression: Annotated[str, Field(min_length=1, max_length=600, description="How load and volume progress.")]
    blocks: Annotated[list[SkeletonBlock], Field(min_length=1, max_length=PLAN_WEEKS)]
    weeks: Annotated[list[SkeletonWeek], Field(min_length=PLAN_WEEKS, max_length=PLAN_WEEKS)]

    @model_validator(mode="after")
    def _covers_every_week_once(self) -> "PlanSkeleton":
        _check_covers_every_week_once(self.weeks, self.blocks)
        return self

    @classmethod
    def of(cls, outline: "PlanOutline", overview: "PlanOverview") -> "PlanSkeleton":
        """The skeleton an outline and its overview make together."""
        return cls(**overview.model_dump(), **outline.model_dump())


class PlanOutline(_Reply):
    """The skeleton without its words: the split, the exercise selection, each week's theme and
    deloads. Progressive generation writes it first, as short as it can be: every week waits for it."""

    max_output_tokens = 4096  # largest seen: ~700 (6 days, two blocks)

    days_per_week: Annotated[int, Field(ge=1, le=7)]
    blocks: Annotated[list[SkeletonBlock], Field(min_length=1, max_length=PLAN_WEEKS)]
    weeks: Annotated[list[SkeletonWeek], Field(min_length=PLAN_WEEKS, max_length=PLAN_WEEKS)]

    @model_validator(mode="after")
    def _covers_every_week_once(self) -> "PlanOutline":
        _check_covers_every_week_once(self.weeks, self.blocks)
        return self


class PlanOverview(_Reply):
    """The skeleton's words, written against its outline while the weeks are being written."""

    max_output_tokens = 2048  # largest seen: ~250

    title: Annotated[str, Field(min_length=1, max_length=160)]
    summary: Annotated[str, Field(min_length=1, max_length=2000)]
    progression: Annotated[str, Field(min_length=1, max_length=600, description="How load and volume progress.")]


def _check_covers_every_week_once(weeks: list[SkeletonWeek], blocks: list[SkeletonBlock]) -> None:
    expected = list(range(1, PLAN_WEEKS + 1))
    if sorted(w.week for w in weeks) != expected:
        raise ValueError(f"the skeleton describes weeks 1..{PLAN_WEEKS} exactly once each")
    if sorted(n for block in blocks for n in block.weeks) != expected:
        raise ValueError(f"the blocks cover weeks 1..{PLAN_WEEKS} exactly once each")


class ExerciseProfile(_Reply):
    """What the app shows about an exercise: how to do it, what it works, what it needs."""

    max_output_tokens = 2048  # largest seen: 280

    name: Annotated[str, Field(min_length=2, max_length=120)]
    description: Annotated[str, Field(min_length=1, max_length=1000)]
    instructions: Annotated[list[str], Field(min_length=1, max_length=12)]
    primary_muscles: Annotated[list[str], Field(min_length=1, max_length=8)]
    secondary_muscles: Annotated[list[str], Field(max_length=8)]
    equipment: Annotated[list[str], Field(max_length=8)]
    cues: Annotated[list[str], Field(max_length=8)]
    difficulty: Annotated[str, Field(pattern="^(beginner|intermediate|advanced)$")]
