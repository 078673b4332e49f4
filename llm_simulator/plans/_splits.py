"""How a week is split into training days: the day templates, and which split suits the days
per week, the goal and the level."""

import random
from dataclasses import dataclass

from llm_simulator.catalogue import Level, Pattern
from llm_simulator.intent import Goal, PlanIntent

P = Pattern


@dataclass(frozen=True)
class Day:
    """A training day as a template: a focus and the patterns of its slots, most important first."""

    focus: str
    slots: tuple[tuple[Pattern, ...], ...]


_FULL_A = Day(
    "Full Body A",
    ((P.SQUAT,), (P.HORIZONTAL_PUSH,), (P.HORIZONTAL_PULL,), (P.HINGE, P.GLUTES), (P.VERTICAL_PUSH, P.SHOULDERS),
     (P.CORE,), (P.BICEPS, P.TRICEPS)),
)  # fmt: skip
_FULL_B = Day(
    "Full Body B",
    ((P.HINGE,), (P.VERTICAL_PUSH, P.HORIZONTAL_PUSH), (P.VERTICAL_PULL, P.HORIZONTAL_PULL), (P.LUNGE, P.SQUAT),
     (P.HORIZONTAL_PUSH,), (P.CORE,), (P.CALVES, P.CONDITIONING)),
)  # fmt: skip
_FULL_C = Day(
    "Full Body C",
    ((P.LUNGE, P.SQUAT), (P.HORIZONTAL_PUSH,), (P.HORIZONTAL_PULL, P.VERTICAL_PULL), (P.GLUTES, P.HINGE),
     (P.SHOULDERS,), (P.CORE,), (P.TRICEPS, P.BICEPS)),
)  # fmt: skip
_UPPER_A = Day(
    "Upper Body A",
    ((P.HORIZONTAL_PUSH,), (P.HORIZONTAL_PULL,), (P.VERTICAL_PUSH,), (P.VERTICAL_PULL, P.HORIZONTAL_PULL),
     (P.SHOULDERS,), (P.BICEPS,), (P.TRICEPS,)),
)  # fmt: skip
_UPPER_B = Day(
    "Upper Body B",
    ((P.VERTICAL_PUSH, P.HORIZONTAL_PUSH), (P.VERTICAL_PULL, P.HORIZONTAL_PULL), (P.HORIZONTAL_PUSH,),
     (P.HORIZONTAL_PULL,), (P.SHOULDERS,), (P.TRICEPS,), (P.BICEPS,)),
)  # fmt: skip
_LOWER_A = Day(
    "Lower Body A",
    ((P.SQUAT,), (P.HINGE,), (P.LUNGE,), (P.GLUTES, P.HINGE), (P.CALVES,), (P.CORE,), (P.CORE,)),
)
_LOWER_B = Day(
    "Lower Body B",
    ((P.HINGE,), (P.SQUAT, P.LUNGE), (P.LUNGE,), (P.GLUTES,), (P.CORE,), (P.CALVES,), (P.CORE,)),
)
_PUSH = Day(
    "Push: Chest, Shoulders and Triceps",
    ((P.HORIZONTAL_PUSH,), (P.VERTICAL_PUSH,), (P.HORIZONTAL_PUSH,), (P.SHOULDERS,), (P.TRICEPS,), (P.TRICEPS,),
     (P.CORE,)),
)  # fmt: skip
_PULL = Day(
    "Pull: Back and Biceps",
    ((P.VERTICAL_PULL,), (P.HORIZONTAL_PULL,), (P.HORIZONTAL_PULL, P.VERTICAL_PULL), (P.SHOULDERS,), (P.BICEPS,),
     (P.BICEPS,), (P.CORE,)),
)  # fmt: skip
_LEGS = Day(
    "Legs and Core",
    ((P.SQUAT,), (P.HINGE,), (P.LUNGE,), (P.GLUTES,), (P.CALVES,), (P.CORE,), (P.CORE,)),
)
CONDITIONING_DAY = Day(
    "Conditioning and Core",
    ((P.CONDITIONING,), (P.CORE,), (P.CONDITIONING,), (P.CORE,), (P.CONDITIONING,), (P.CORE,)),
)


def _variant(day: Day, suffix: str) -> Day:
    return Day(f"{day.focus} ({suffix})", day.slots)


TRAINING_DAYS: dict[int, tuple[int, ...]] = {
    1: (3,),
    2: (1, 4),
    3: (1, 3, 5),
    4: (1, 2, 4, 5),
    5: (1, 2, 3, 5, 6),
    6: (1, 2, 3, 4, 5, 6),
    7: (1, 2, 3, 4, 5, 6, 7),
}

EXERCISES_PER_DAY: dict[Level, tuple[int, int]] = {
    Level.BEGINNER: (4, 5),
    Level.INTERMEDIATE: (5, 6),
    Level.ADVANCED: (6, 7),
}


def split(days: int, intent: PlanIntent, rng: random.Random) -> tuple[str, list[Day]]:
    """The split's name and one template per training day."""
    lifting_focus = intent.goal in (Goal.MUSCLE, Goal.STRENGTH) and intent.level is not Level.BEGINNER
    if days == 1:
        return "Full Body", [_FULL_A]
    if days == 2:
        return "Full Body", [_FULL_A, _FULL_B]
    if days == 3:
        if lifting_focus and rng.random() < 0.5:
            return "Push/Pull/Legs", [_PUSH, _PULL, _LEGS]
        return "Full Body", [_FULL_A, _FULL_B, _FULL_C]
    if days == 4:
        if not lifting_focus and rng.random() < 0.5:
            return "Full Body + Conditioning", [_FULL_A, _FULL_B, _FULL_C, CONDITIONING_DAY]
        return "Upper/Lower", [_UPPER_A, _LOWER_A, _UPPER_B, _LOWER_B]
    if days == 5:
        return "Upper/Lower + Push/Pull/Legs", [_UPPER_A, _LOWER_A, _PUSH, _PULL, _LEGS]
    six = [_variant(_PUSH, "A"), _variant(_PULL, "A"), _variant(_LEGS, "A")]
    six += [_variant(_PUSH, "B"), _variant(_PULL, "B"), _variant(_LEGS, "B")]
    if days == 6:
        return "Push/Pull/Legs x2", six
    return "Push/Pull/Legs x2 + Conditioning", [*six, CONDITIONING_DAY]
