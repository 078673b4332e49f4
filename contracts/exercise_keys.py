"""Exercise names to catalogue keys, so every plan that uses an exercise shares one profile."""

import re
from collections.abc import Iterable
from functools import lru_cache

from contracts.events import ExerciseRef
from contracts.plan import TrainingWeek, WorkoutPlan

_WORD = re.compile(r"[a-z0-9]+")

# Abbreviations and spellings that name the same thing; a value may be several words.
_ALIASES = {
    "db": "dumbbell",
    "dbs": "dumbbell",
    "bb": "barbell",
    "kb": "kettlebell",
    "kbs": "kettlebell",
    "rdl": "romanian deadlift",
    "rdls": "romanian deadlift",
    "ohp": "overhead press",
    "pullup": "pull up",
    "pullups": "pull up",
    "pushup": "push up",
    "pushups": "push up",
    "chinup": "chin up",
    "chinups": "chin up",
    "situp": "sit up",
    "situps": "sit up",
    "flye": "fly",
    "flyes": "fly",
    "dumbell": "dumbbell",
    "dumbells": "dumbbell",
    "ups": "up",
}
# Words that never tell two exercises apart.
_FILLER = frozenset({"a", "an", "the", "with", "on", "using", "exercise", "and"})
# Plural-looking words that are not plurals.
_NOT_PLURAL = frozenset({"press", "cross", "abs", "biceps", "triceps", "glutes", "lats", "pecs", "quads", "hips"})


@lru_cache(maxsize=4096)  # plans share their exercises' names: each is read once
def exercise_key(name: str) -> str:
    """The catalogue key of an exercise name: its words, lower-cased, abbreviations spelled out,
    plurals made singular, fillers dropped, and sorted, so that "Barbell Back Squat",
    "Back Squat (Barbell)" and "BB back squats" share one key (and one profile)."""
    words: set[str] = set()
    for raw in _WORD.findall(name.lower()):
        for word in _ALIASES.get(raw, raw).split():
            if word not in _FILLER:
                words.add(_singular(word))
    return "-".join(sorted(words))


def _singular(word: str) -> str:
    if word in _NOT_PLURAL or len(word) <= 3:
        return word
    if word.endswith(("sses", "shes", "ches", "xes")):
        return word[:-2]
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def exercise_refs(plan: WorkoutPlan) -> tuple[ExerciseRef, ...]:
    """Every distinct exercise name in the plan, in order of first use, with its key."""
    return exercise_refs_of(plan.weeks)


def exercise_refs_of(weeks: Iterable[TrainingWeek]) -> tuple[ExerciseRef, ...]:
    """Every distinct exercise name in the weeks, in order of first use, with its key."""
    seen: dict[str, ExerciseRef] = {}
    for week in weeks:
        for day in week.days:
            for item in day.exercises:
                if item.name not in seen:
                    seen[item.name] = _ref(item.name)
    return tuple(seen.values())


@lru_cache(maxsize=4096)
def _ref(name: str) -> ExerciseRef:
    # Frozen, so one ref per name serves every plan that uses it.
    return ExerciseRef(key=exercise_key(name), name=name)


def distinct_by_key(refs: tuple[ExerciseRef, ...]) -> tuple[ExerciseRef, ...]:
    """One ref per catalogue key (the first name wins): one profile per exercise."""
    by_key: dict[str, ExerciseRef] = {}
    for ref in refs:
        by_key.setdefault(ref.key, ref)
    return tuple(by_key.values())
