"""Exercise names to catalogue keys, so every plan that uses an exercise shares one profile."""

import re

from contracts.events import ExerciseRef
from contracts.plan import WorkoutPlan

_NOT_WORD = re.compile(r"[^a-z0-9]+")


def exercise_key(name: str) -> str:
    """Lower-case words joined by '-': 'Barbell Back-Squat ' and 'barbell back squat' share a key."""
    return _NOT_WORD.sub("-", name.lower()).strip("-")


def exercise_refs(plan: WorkoutPlan) -> tuple[ExerciseRef, ...]:
    """Every distinct exercise name in the plan, in order of first use, with its key."""
    seen: dict[str, ExerciseRef] = {}
    for week in plan.weeks:
        for day in week.days:
            for item in day.exercises:
                if item.name not in seen:
                    seen[item.name] = ExerciseRef(key=exercise_key(item.name), name=item.name)
    return tuple(seen.values())


def distinct_by_key(refs: tuple[ExerciseRef, ...]) -> tuple[ExerciseRef, ...]:
    """One ref per catalogue key (the first name wins): one profile per exercise."""
    by_key: dict[str, ExerciseRef] = {}
    for ref in refs:
        by_key.setdefault(ref.key, ref)
    return tuple(by_key.values())
