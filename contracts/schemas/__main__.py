"""Write the committed JSON Schemas: ``python -m contracts.schemas``."""

import json
from pathlib import Path

from pydantic import BaseModel

from contracts.events import EVENTS
from contracts.plan import (
    ExerciseProfile,
    PlanOutline,
    PlanOverview,
    PlanSkeleton,
    TrainingDay,
    TrainingWeek,
    WorkoutPlan,
)
from contracts.progress import PlanProgress

HERE = Path(__file__).parent


def rendered() -> dict[str, str]:
    """File name -> JSON text for every event and LLM reply model."""
    models: dict[str, type[BaseModel]] = {f"{e.subject}.json": e for e in EVENTS}
    models["progress.json"] = PlanProgress
    models["llm.workout_plan.json"] = WorkoutPlan
    models["llm.plan_skeleton.json"] = PlanSkeleton
    models["llm.training_week.json"] = TrainingWeek
    models["llm.plan_outline.json"] = PlanOutline
    models["llm.plan_overview.json"] = PlanOverview
    models["llm.training_day.json"] = TrainingDay
    models["llm.exercise_profile.json"] = ExerciseProfile
    return {
        name: json.dumps(model.model_json_schema(mode="serialization"), indent=2, sort_keys=True) + "\n"
        for name, model in models.items()
    }


if __name__ == "__main__":
    for name, text in rendered().items():
        (HERE / name).write_text(text)
        print(f"wrote contracts/schemas/{name}")
