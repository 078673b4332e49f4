"""Sets, reps, rest and a coaching note for each exercise in each week: progressive overload
by goal, with a deload in week 4 and a lighter week 8 (a peak for strength)."""

import random

from contracts.plan import PLAN_WEEKS, PrescribedExercise
from llm_simulator.catalogue import Dose, Exercise, Level, Pattern
from llm_simulator.intent import Goal, PlanIntent

# (sets, reps, rest seconds) per week 1..8. Week 4 is the deload; week 8 tests (strength) or unloads.
_Prescription = tuple[int, str, int]
_MAIN: dict[Goal, tuple[_Prescription, ...]] = {
    Goal.STRENGTH: (
        (4, "6", 150), (4, "5", 180), (5, "5", 180), (3, "5", 120),
        (4, "4", 180), (5, "3", 210), (5, "2-3", 240), (3, "1-3", 240),
    ),
    Goal.MUSCLE: (
        (3, "10-12", 90), (3, "10-12", 90), (4, "8-10", 90), (2, "10", 60),
        (4, "8-10", 105), (4, "6-8", 120), (5, "6-8", 120), (2, "8", 75),
    ),
    Goal.FAT_LOSS: (
        (3, "12-15", 60), (3, "12-15", 45), (4, "12", 45), (2, "12", 45),
        (3, "10-12", 45), (4, "10-12", 40), (4, "10-12", 30), (2, "12", 45),
    ),
    Goal.GENERAL: (
        (2, "12", 60), (3, "12", 60), (3, "10-12", 60), (2, "10", 60),
        (3, "10", 75), (3, "8-10", 75), (4, "8-10", 75), (2, "10", 60),
    ),
}  # fmt: skip
_ACCESSORY: dict[Goal, tuple[_Prescription, ...]] = {
    Goal.STRENGTH: (
        (3, "8-10", 90), (3, "8-10", 90), (3, "8", 90), (2, "8", 60),
        (3, "6-8", 90), (3, "6-8", 90), (4, "6-8", 90), (2, "8", 60),
    ),
    Goal.MUSCLE: (
        (3, "12-15", 60), (3, "12-15", 60), (4, "10-12", 60), (2, "12", 45),
        (3, "10-12", 75), (4, "10-12", 75), (4, "8-12", 75), (2, "12", 45),
    ),
    Goal.FAT_LOSS: (
        (2, "15", 45), (3, "15", 30), (3, "15-20", 30), (2, "12", 30),
        (3, "12-15", 30), (3, "15", 30), (4, "15", 20), (2, "12", 30),
    ),
    Goal.GENERAL: (
        (2, "12-15", 45), (2, "12-15", 45), (3, "12-15", 45), (2, "10", 45),
        (3, "12", 45), (3, "12-15", 45), (3, "15", 45), (2, "10", 45),
    ),
}  # fmt: skip
_HOLD_SECONDS = (30, 35, 40, 25, 40, 45, 50, 30)
_CARRY_METRES = (30, 30, 40, 20, 40, 40, 50, 30)
_INTERVAL: tuple[tuple[str, int], ...] = (
    ("30 s", 60), ("30 s", 45), ("40 s", 45), ("20 s", 60), ("40 s", 40), ("45 s", 40), ("45 s", 30), ("30 s", 60),
)  # fmt: skip
_DELOAD_WEEKS = (4, 8)


_MAIN_GUIDANCE: dict[Goal, tuple[str, ...]] = {
    Goal.STRENGTH: (
        "Find a load you could lift for 2-3 more reps (RPE 7).",
        "Add 2.5-5 kg if last week's sets moved well.",
        "Heaviest sets of the block; leave 1-2 reps in reserve.",
        "Deload: about 60% of week 3's load, crisp and fast.",
        "Start about 5% heavier than week 1 for fewer reps.",
        "Add load again; leave 1-2 reps in reserve.",
        "Top sets at RPE 8-9; stop if bar speed drops sharply.",
        "Work up to a heavy, clean single or triple; stop before form slips.",
    ),
    Goal.MUSCLE: (
        "Pick a load that leaves 2-3 reps in reserve.",
        "Add one rep per set or a little load.",
        "Last set close to failure (RPE 9).",
        "Deload: about 70% of your usual load, slow and controlled.",
        "A little heavier than week 3; 2-second lowering.",
        "Heavier loads in the 6-8 range; rest fully.",
        "Five hard sets; keep one rep in reserve.",
        "Deload: light and smooth; write down your best sets.",
    ),
    Goal.FAT_LOSS: (
        "Moderate load; keep rests short so the heart rate stays up.",
        "Same load, shorter rests than last week.",
        "Add a round; keep the reps smooth.",
        "Deload: easy effort, no grinding reps.",
        "Slightly heavier than week 1; keep the pace.",
        "Rests at 40 seconds; keep every rep clean.",
        "Hardest week: short rests, steady breathing.",
        "Deload: easy sets; retest how the circuit feels.",
    ),
    Goal.GENERAL: (
        "Comfortable load; learn the movement.",
        "Same load, add a set if it feels easy.",
        "Add a little load if all reps were solid.",
        "Deload: lighter and easier than usual.",
        "Slightly heavier than week 3.",
        "Add a rep or a little load.",
        "Most demanding week; stay 1-2 reps short of failure.",
        "Deload: easy week, note what improved.",
    ),
}
_ACCESSORY_GUIDANCE = (
    "Controlled 2-second lowering.",
    "Full range of motion on every rep.",
    "Pause for a second at the hardest point.",
    "Same load as last time, one more rep per set.",
    "Slow and strict; no momentum.",
    "Keep 1-2 reps in reserve.",
)
_HOLD_GUIDANCE = (
    "Perfect position; end the set when form breaks.",
    "Breathe steadily throughout.",
    "Add time only when the last hold was solid.",
)
_CONDITIONING_GUIDANCE = (
    "Work hard, recover fully in the rest.",
    "Steady, repeatable effort on every interval.",
    "Keep moving in the rest: walk or march in place.",
)
_DELOAD_ACCESSORY = "Deload: easy effort, about half the usual load."


def is_deload(week: int, intent: PlanIntent) -> bool:
    """Whether ``write_plan`` makes ``week`` a lighter week for ``intent``."""
    return week in _DELOAD_WEEKS and not (week == PLAN_WEEKS and intent.goal is Goal.STRENGTH)


def prescribe(exercise: Exercise, slot: int, week: int, intent: PlanIntent, rng: random.Random) -> PrescribedExercise:
    """``exercise`` as written in ``week``; the day's first two slots are its main lifts."""
    index = week - 1
    deload = is_deload(week, intent)
    side = " per side" if exercise.unilateral else ""
    cue = rng.choice(exercise.cues) if exercise.cues else "Move with control"
    if Pattern.CONDITIONING in exercise.patterns and exercise.dose is Dose.TIME:
        work, rest = _INTERVAL[index]
        sets = 2 if week in _DELOAD_WEEKS else 4 if week >= 5 else 3
        guidance = "Deload: easy pace." if week in _DELOAD_WEEKS else rng.choice(_CONDITIONING_GUIDANCE)
        return _item(exercise, sets, f"{work} work", rest, notes=f"{guidance} {cue}.")
    if exercise.dose is Dose.TIME:
        sets = 2 if week in _DELOAD_WEEKS else 3
        guidance = "Deload: shorter, easy holds." if week in _DELOAD_WEEKS else rng.choice(_HOLD_GUIDANCE)
        return _item(exercise, sets, f"{_HOLD_SECONDS[index]} s{side}", 45, notes=f"{guidance} {cue}.")
    if exercise.dose is Dose.DISTANCE:
        sets = 2 if week in _DELOAD_WEEKS else 3
        guidance = "Deload: moderate weight." if week in _DELOAD_WEEKS else "Heaviest weight you can carry tall."
        return _item(exercise, sets, f"{_CARRY_METRES[index]} m{side}", 60, notes=f"{guidance} {cue}.")
    if slot < 2 and exercise.compound:
        sets, reps, rest = _MAIN[intent.goal][index]
        sets = _level_sets(sets, intent.level, main=True)
        guidance = _MAIN_GUIDANCE[intent.goal][index]
    else:
        sets, reps, rest = _ACCESSORY[intent.goal][index]
        sets = _level_sets(sets, intent.level, main=False)
        guidance = _DELOAD_ACCESSORY if deload else rng.choice(_ACCESSORY_GUIDANCE)
    if Pattern.CONDITIONING in exercise.patterns and intent.goal is Goal.FAT_LOSS:
        rest = min(rest, 45)
    return _item(exercise, sets, f"{reps}{side}", rest, notes=f"{guidance} {cue}.")


def _level_sets(sets: int, level: Level, *, main: bool) -> int:
    if level is Level.BEGINNER:
        return max(2, sets - 1)
    if level is Level.ADVANCED and main:
        return min(6, sets + 1)
    return sets


def _item(exercise: Exercise, sets: int, reps: str, rest: int, *, notes: str) -> PrescribedExercise:
    return PrescribedExercise(name=exercise.name, sets=sets, reps=reps, rest_seconds=rest, notes=notes)
