"""The words of a plan: its title and summary, each week's theme, the skeleton's progression
line, and the extra coaching sentences of a more verbose model."""

import random

from contracts.plan import TrainingDay
from llm_simulator.catalogue import Joint, Level
from llm_simulator.intent import Goal, PlanIntent, Setting

THEMES: dict[Goal, tuple[str, ...]] = {
    Goal.STRENGTH: (
        "Foundation: technique and baseline loads",
        "Build: add load to the main lifts",
        "Build: heaviest volume of block one",
        "Deload: lighter loads to recover and consolidate",
        "Intensification: heavier sets, fewer reps",
        "Intensification: push the top sets",
        "Overreach: the heaviest week of the plan",
        "Peak and deload: low volume, test a heavy single or triple",
    ),
    Goal.MUSCLE: (
        "Accumulation: learn the movements at moderate volume",
        "Accumulation: add a rep or a little load",
        "Volume build: an extra set on the main lifts",
        "Deload: half the volume, recover and grow",
        "Block two: fresh accessories, heavier compounds",
        "Progressive overload: heavier in the 6-8 range",
        "Peak volume: five sets on the main lifts",
        "Deload and reassess: light week before the next cycle",
    ),
    Goal.FAT_LOSS: (
        "Kick-off: build the habit with full-body circuits",
        "Density: same work, shorter rests",
        "Volume: an extra round on the big lifts",
        "Deload: easier sessions, keep moving daily",
        "Block two: new exercises, harder conditioning",
        "Density: rests down to 40 seconds",
        "Peak week: the most work in the least time",
        "Deload and reassess: light week, retest your circuit times",
    ),
    Goal.GENERAL: (
        "Foundation: learn the movements and find your loads",
        "Consistency: same plan, a little more volume",
        "Build: add a set where it felt easy",
        "Deload: lighter week to recover",
        "Block two: new variations, slightly heavier",
        "Build: steady progression",
        "Peak: the most demanding week",
        "Deload and reassess: light week, note your progress",
    ),
}


PROGRESSION = {
    Goal.MUSCLE: "Add a rep or a little load each week while reps stay in range; deload in weeks 4 and 8.",
    Goal.STRENGTH: "Main lifts get heavier with fewer reps each week; deload in week 4, peak in week 8.",
    Goal.FAT_LOSS: "Density rises week by week with shorter rests; deload in weeks 4 and 8.",
    Goal.GENERAL: "Volume first, then intensity; deload in weeks 4 and 8.",
}

_EXTRA_NOTES = (
    "Film a set now and then and compare it with the cues above.",
    "Write down the load and reps of every set so next week has a target.",
    "Warm up with two lighter sets before the first working set.",
    "Stop the set if form breaks down, even before the last rep.",
    "Breathe in before each rep and brace your trunk as if for a cough.",
    "Keep two reps in reserve unless the week's theme says otherwise.",
    "Rest the full time when the set was hard; shorten it only when it was easy.",
    "Move the weight the same way on the last rep as on the first.",
)


def padded(day: TrainingDay, sentences: int, rng: random.Random) -> TrainingDay:
    """``day`` with ``sentences`` more coaching sentences in each exercise's notes."""
    exercises = []
    for item in day.exercises:
        extra = " ".join(rng.sample(_EXTRA_NOTES, min(sentences, len(_EXTRA_NOTES))))
        exercises.append(item.model_copy(update={"notes": f"{item.notes} {extra}"[:400].rstrip()}))
    return day.model_copy(update={"exercises": exercises})


_GOAL_TITLES = {
    Goal.MUSCLE: "Muscle-Building",
    Goal.STRENGTH: "Strength",
    Goal.FAT_LOSS: "Fat-Loss",
    Goal.GENERAL: "General Fitness",
}
_GOAL_PHRASES = {
    Goal.MUSCLE: "build muscle",
    Goal.STRENGTH: "get stronger on the big lifts",
    Goal.FAT_LOSS: "lose fat while keeping muscle",
    Goal.GENERAL: "improve general fitness and work capacity",
}
_SETTING_PHRASES = {
    Setting.GYM: "a fully equipped gym",
    Setting.HOME: "home equipment (dumbbells, bands, a bench)",
    Setting.DUMBBELLS: "dumbbells only",
    Setting.BODYWEIGHT: "bodyweight only, no equipment",
}
_LEVEL_PHRASES = {
    Level.BEGINNER: "a beginner",
    Level.INTERMEDIATE: "an intermediate lifter",
    Level.ADVANCED: "an experienced lifter",
}
_JOINT_PHRASES = {Joint.KNEE: "the knee", Joint.LOWER_BACK: "the lower back", Joint.SHOULDER: "the shoulder"}


def plan_title(intent: PlanIntent, days: int, split_name: str) -> str:
    where = {Setting.HOME: "Home ", Setting.DUMBBELLS: "Dumbbell ", Setting.BODYWEIGHT: "Bodyweight "}.get(
        intent.setting, ""
    )
    return f"8-Week {where}{_GOAL_TITLES[intent.goal]} Plan: {days} Days per Week, {split_name}"


def plan_summary(intent: PlanIntent, days: int, split_name: str) -> str:
    parts = [
        f"A {days}-day-per-week {split_name.lower()} programme for {_LEVEL_PHRASES[intent.level]} who wants to "
        f"{_GOAL_PHRASES[intent.goal]}, using {_SETTING_PHRASES[intent.setting]}.",
    ]
    if intent.injuries:
        joints = " and ".join(_JOINT_PHRASES[j] for j in sorted(intent.injuries))
        parts.append(f"Exercises that load {joints} heavily are left out in favour of joint-friendly alternatives.")
    last_week = (
        "peaks with a heavy single or triple on low volume"
        if intent.goal is Goal.STRENGTH
        else "is a second deload to consolidate before the next cycle"
    )
    parts.append(
        "Weeks 1-3 build volume and load, week 4 is a deload, weeks 5-7 bring fresh accessories and heavier "
        f"work, and week 8 {last_week}."
    )
    parts.append("Add load when every set reaches the top of its rep range with good form.")
    return " ".join(parts)
