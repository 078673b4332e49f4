"""JetStream subject names: one subject per event type."""

from typing import Final

PLAN_REQUESTED: Final = "plan.requested"
PLAN_GENERATED: Final = "plan.generated"
EXERCISE_PROFILE_NEEDED: Final = "exercise.profile.needed"
EXERCISE_PROFILED: Final = "exercise.profiled"
PLAN_PERSISTED: Final = "plan.persisted"
PLAN_FAILED: Final = "plan.failed"
PLAN_CANCELLED: Final = "plan.cancelled"
LLM_CALL_RECORDED: Final = "llm.call.recorded"
PLAN_WEEK_REQUESTED: Final = "plan.week.requested"
PLAN_WEEK_GENERATED: Final = "plan.week.generated"
PLAN_AWAITING_REVIEW: Final = "plan.awaiting.review"

# Progress notices go to ``progress.<request_id>`` (one subject per request, so a reader of one
# request's live status filters on the broker, not in memory).
PROGRESS_PREFIX: Final = "progress"

ALL: Final = (
    PLAN_REQUESTED,
    PLAN_GENERATED,
    EXERCISE_PROFILE_NEEDED,
    EXERCISE_PROFILED,
    PLAN_PERSISTED,
    PLAN_FAILED,
    PLAN_CANCELLED,
    LLM_CALL_RECORDED,
    PLAN_WEEK_REQUESTED,
    PLAN_WEEK_GENERATED,
    PLAN_AWAITING_REVIEW,
)
