"""JetStream subject names: one subject per event type."""

from typing import Final

PLAN_REQUESTED: Final = "plan.requested"
PLAN_GENERATED: Final = "plan.generated"
EXERCISE_PROFILE_NEEDED: Final = "exercise.profile.needed"
EXERCISE_PROFILED: Final = "exercise.profiled"
PLAN_PERSISTED: Final = "plan.persisted"
PLAN_FAILED: Final = "plan.failed"

ALL: Final = (
    PLAN_REQUESTED,
    PLAN_GENERATED,
    EXERCISE_PROFILE_NEEDED,
    EXERCISE_PROFILED,
    PLAN_PERSISTED,
    PLAN_FAILED,
)
