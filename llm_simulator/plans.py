"""Plausible 8-week plans: a split chosen by days per week, exercises drawn from the catalogue,
progressive overload week to week and a deload in week 4 (and a lighter week 8)."""

import random
from dataclasses import dataclass

from contracts.plan import (
    PLAN_WEEKS,
    PlanSkeleton,
    PrescribedExercise,
    SkeletonBlock,
    SkeletonDay,
    SkeletonWeek,
    TrainingDay,
    TrainingWeek,
    WorkoutPlan,
)
from llm_simulator.catalogue import Dose, Exercise, Gear, Joint, Level, Pattern, exercises
from llm_simulator.intent import Goal, PlanIntent, Setting

P = Pattern


@dataclass(frozen=True)
class _Day:
    """A training day as a template: a focus and the patterns of its slots, most important first."""

    focus: str
    slots: tuple[tuple[Pattern, ...], ...]


_FULL_A = _Day(
    "Full Body A",
    ((P.SQUAT,), (P.HORIZONTAL_PUSH,), (P.HORIZONTAL_PULL,), (P.HINGE, P.GLUTES), (P.VERTICAL_PUSH, P.SHOULDERS),
     (P.CORE,), (P.BICEPS, P.TRICEPS)),
)  # fmt: skip
_FULL_B = _Day(
    "Full Body B",
    ((P.HINGE,), (P.VERTICAL_PUSH, P.HORIZONTAL_PUSH), (P.VERTICAL_PULL, P.HORIZONTAL_PULL), (P.LUNGE, P.SQUAT),
     (P.HORIZONTAL_PUSH,), (P.CORE,), (P.CALVES, P.CONDITIONING)),
)  # fmt: skip
_FULL_C = _Day(
    "Full Body C",
    ((P.LUNGE, P.SQUAT), (P.HORIZONTAL_PUSH,), (P.HORIZONTAL_PULL, P.VERTICAL_PULL), (P.GLUTES, P.HINGE),
     (P.SHOULDERS,), (P.CORE,), (P.TRICEPS, P.BICEPS)),
)  # fmt: skip
_UPPER_A = _Day(
    "Upper Body A",
    ((P.HORIZONTAL_PUSH,), (P.HORIZONTAL_PULL,), (P.VERTICAL_PUSH,), (P.VERTICAL_PULL, P.HORIZONTAL_PULL),
     (P.SHOULDERS,), (P.BICEPS,), (P.TRICEPS,)),
)  # fmt: skip
_UPPER_B = _Day(
    "Upper Body B",
    ((P.VERTICAL_PUSH, P.HORIZONTAL_PUSH), (P.VERTICAL_PULL, P.HORIZONTAL_PULL), (P.HORIZONTAL_PUSH,),
     (P.HORIZONTAL_PULL,), (P.SHOULDERS,), (P.TRICEPS,), (P.BICEPS,)),
)  # fmt: skip
_LOWER_A = _Day(
    "Lower Body A",
    ((P.SQUAT,), (P.HINGE,), (P.LUNGE,), (P.GLUTES, P.HINGE), (P.CALVES,), (P.CORE,), (P.CORE,)),
)
_LOWER_B = _Day(
    "Lower Body B",
    ((P.HINGE,), (P.SQUAT, P.LUNGE), (P.LUNGE,), (P.GLUTES,), (P.CORE,), (P.CALVES,), (P.CORE,)),
)
_PUSH = _Day(
    "Push: Chest, Shoulders and Triceps",
    ((P.HORIZONTAL_PUSH,), (P.VERTICAL_PUSH,), (P.HORIZONTAL_PUSH,), (P.SHOULDERS,), (P.TRICEPS,), (P.TRICEPS,),
     (P.CORE,)),
)  # fmt: skip
_PULL = _Day(
    "Pull: Back and Biceps",
    ((P.VERTICAL_PULL,), (P.HORIZONTAL_PULL,), (P.HORIZONTAL_PULL, P.VERTICAL_PULL), (P.SHOULDERS,), (P.BICEPS,),
     (P.BICEPS,), (P.CORE,)),
)  # fmt: skip
_LEGS = _Day(
    "Legs and Core",
    ((P.SQUAT,), (P.HINGE,), (P.LUNGE,), (P.GLUTES,), (P.CALVES,), (P.CORE,), (P.CORE,)),
)
_CONDITIONING = _Day(
    "Conditioning and Core",
    ((P.CONDITIONING,), (P.CORE,), (P.CONDITIONING,), (P.CORE,), (P.CONDITIONING,), (P.CORE,)),
)


def _variant(day: _Day, suffix: str) -> _Day:
    return _Day(f"{day.focus} ({suffix})", day.slots)


# Where a slot's pattern has no allowed exercise (no equipment, an injury), these stand in, in order.
_SUBSTITUTES: dict[Pattern, tuple[Pattern, ...]] = {
    P.SQUAT: (P.GLUTES, P.LUNGE, P.HINGE),
    P.LUNGE: (P.GLUTES, P.SQUAT),
    P.HINGE: (P.GLUTES,),
    P.GLUTES: (P.HINGE,),
    P.HORIZONTAL_PUSH: (P.TRICEPS, P.VERTICAL_PUSH),
    P.VERTICAL_PUSH: (P.SHOULDERS, P.HORIZONTAL_PUSH),
    P.HORIZONTAL_PULL: (P.VERTICAL_PULL, P.SHOULDERS),
    P.VERTICAL_PULL: (P.HORIZONTAL_PULL, P.SHOULDERS),
    P.SHOULDERS: (P.HORIZONTAL_PULL,),
    P.BICEPS: (P.HORIZONTAL_PULL, P.VERTICAL_PULL),
    P.TRICEPS: (P.HORIZONTAL_PUSH,),
    P.CALVES: (P.CORE,),
    P.CORE: (),
    P.CONDITIONING: (P.CORE,),
}

_TRAINING_DAYS: dict[int, tuple[int, ...]] = {
    1: (3,),
    2: (1, 4),
    3: (1, 3, 5),
    4: (1, 2, 4, 5),
    5: (1, 2, 3, 5, 6),
    6: (1, 2, 3, 4, 5, 6),
    7: (1, 2, 3, 4, 5, 6, 7),
}

_EXERCISES_PER_DAY: dict[Level, tuple[int, int]] = {
    Level.BEGINNER: (4, 5),
    Level.INTERMEDIATE: (5, 6),
    Level.ADVANCED: (6, 7),
}

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
_MIN_EXERCISES = 4
_FILLERS = (P.CORE, P.CONDITIONING, P.GLUTES)

_THEMES: dict[Goal, tuple[str, ...]] = {
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


def write_plan(intent: PlanIntent, rng: random.Random, note_sentences: int = 0) -> WorkoutPlan:
    """A full 8-week plan for ``intent``; ``rng`` decides everything the intent leaves open.

    ``note_sentences`` extra coaching sentences per exercise make the plan longer (a more verbose
    model), for measuring time-to-plan at realistic sizes."""
    days = intent.days_per_week or rng.choice((3, 4))
    split_name, templates = _split(days, intent, rng)
    low, high = _EXERCISES_PER_DAY[intent.level]
    sizes = [rng.randint(low, high) for _ in templates]
    # Two blocks: the main lifts stay for all 8 weeks; accessories change at week 5 for variety.
    selector = _Selector(intent, rng)
    block_one = selector.block(templates, sizes, previous=None)
    block_two = selector.block(templates, sizes, previous=block_one)
    weeks = []
    for week in range(1, PLAN_WEEKS + 1):
        block = block_one if week <= PLAN_WEEKS // 2 else block_two
        training_days = [
            TrainingDay(
                day=day_number,
                focus=template.focus,
                exercises=[_prescribe(e, slot, week, intent, rng) for slot, e in enumerate(chosen)],
            )
            for day_number, template, chosen in zip(_TRAINING_DAYS[days], templates, block, strict=True)
        ]
        if note_sentences:
            training_days = [_padded(day, note_sentences, rng) for day in training_days]
        weeks.append(TrainingWeek(week=week, theme=_THEMES[intent.goal][week - 1], days=training_days))
    return WorkoutPlan(title=_title(intent, days, split_name), summary=_summary(intent, days, split_name), weeks=weeks)


def is_deload(week: int, intent: PlanIntent) -> bool:
    """Whether ``write_plan`` makes ``week`` a lighter week for ``intent``."""
    return week in _DELOAD_WEEKS and not (week == PLAN_WEEKS and intent.goal is Goal.STRENGTH)


def skeleton_of(plan: WorkoutPlan, intent: PlanIntent) -> PlanSkeleton:
    """The skeleton a model would have written before ``plan``: its blocks of weeks that share days
    and exercises, each week's theme and whether it is a deload."""
    blocks: list[SkeletonBlock] = []
    for week in plan.weeks:
        days = [SkeletonDay(day=d.day, focus=d.focus, exercises=[e.name for e in d.exercises]) for d in week.days]
        if blocks and blocks[-1].days == days:
            blocks[-1] = SkeletonBlock(weeks=[*blocks[-1].weeks, week.week], days=days)
        else:
            blocks.append(SkeletonBlock(weeks=[week.week], days=days))
    return PlanSkeleton(
        title=plan.title,
        summary=plan.summary,
        days_per_week=len(plan.weeks[0].days),
        progression=_PROGRESSION[intent.goal],
        blocks=blocks,
        weeks=[SkeletonWeek(week=w.week, theme=w.theme, deload=is_deload(w.week, intent)) for w in plan.weeks],
    )


_PROGRESSION = {
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


def _padded(day: TrainingDay, sentences: int, rng: random.Random) -> TrainingDay:
    exercises = []
    for item in day.exercises:
        extra = " ".join(rng.sample(_EXTRA_NOTES, min(sentences, len(_EXTRA_NOTES))))
        exercises.append(item.model_copy(update={"notes": f"{item.notes} {extra}"[:400].rstrip()}))
    return day.model_copy(update={"exercises": exercises})


def _split(days: int, intent: PlanIntent, rng: random.Random) -> tuple[str, list[_Day]]:
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
            return "Full Body + Conditioning", [_FULL_A, _FULL_B, _FULL_C, _CONDITIONING]
        return "Upper/Lower", [_UPPER_A, _LOWER_A, _UPPER_B, _LOWER_B]
    if days == 5:
        return "Upper/Lower + Push/Pull/Legs", [_UPPER_A, _LOWER_A, _PUSH, _PULL, _LEGS]
    six = [_variant(_PUSH, "A"), _variant(_PULL, "A"), _variant(_LEGS, "A")]
    six += [_variant(_PUSH, "B"), _variant(_PULL, "B"), _variant(_LEGS, "B")]
    if days == 6:
        return "Push/Pull/Legs x2", six
    return "Push/Pull/Legs x2 + Conditioning", [*six, _CONDITIONING]


def _allowed(exercise: Exercise, intent: PlanIntent) -> bool:
    return (
        exercise.needs <= intent.gear
        and not exercise.stresses & intent.injuries
        and exercise.level.rank <= intent.level.rank
    )


class _Selector:
    """Chooses each day's exercises for one 4-week block, spreading variety across the week."""

    def __init__(self, intent: PlanIntent, rng: random.Random) -> None:
        self._intent = intent
        self._rng = rng
        self._pool = [e for e in exercises() if _allowed(e, intent)]

    def block(
        self, templates: list[_Day], sizes: list[int], previous: list[list[Exercise]] | None
    ) -> list[list[Exercise]]:
        """One exercise list per template; with ``previous``, keep its main lifts and re-draw the rest."""
        used_in_block: set[str] = set()
        block: list[list[Exercise]] = []
        for index, (template, size) in enumerate(zip(templates, sizes, strict=True)):
            day = list(previous[index][:2]) if previous else []
            avoid = {e.name for e in previous[index][2:]} if previous else set()
            slots = template.slots[len(day) :]
            if self._intent.goal is Goal.FAT_LOSS and template is not _CONDITIONING:
                # Fat-loss days end with a conditioning finisher instead of their last isolation slot.
                slots = (*slots[: max(0, size - len(day) - 1)], (P.CONDITIONING,))
            for offset, patterns in enumerate(slots):
                if len(day) >= size:
                    break
                main = previous is None and offset < 2 and template is not _CONDITIONING
                if (picked := self._pick(patterns, day, used_in_block, avoid, main=main)) is not None:
                    day.append(picked)
                    used_in_block.add(picked.name)
            # Sparse equipment can leave a day thin (a bodyweight pull day); round it out with core work.
            while len(day) < min(size, _MIN_EXERCISES):
                if (extra := self._pick(_FILLERS, day, used_in_block, avoid, main=False)) is None:
                    break
                day.append(extra)
                used_in_block.add(extra.name)
            block.append(day)
        return block

    def _pick(
        self,
        patterns: tuple[Pattern, ...],
        day: list[Exercise],
        used_in_block: set[str],
        avoid: set[str],
        *,
        main: bool,
    ) -> Exercise | None:
        taken = {e.name for e in day}
        fallbacks = tuple(s for p in patterns for s in _SUBSTITUTES[p])
        for wanted in (patterns, fallbacks):
            candidates = [e for e in self._pool if e.name not in taken and set(e.patterns) & set(wanted)]
            if main and any(e.compound for e in candidates):
                candidates = [e for e in candidates if e.compound]
            if not candidates:
                continue
            leads = {e.patterns[0] for e in day}
            weights = [
                _weight(e, wanted, self._intent, main=main, repeat=e.patterns[0] in leads)
                * (0.3 if e.name in used_in_block else 1.0)
                * (0.15 if e.name in avoid else 1.0)
                for e in candidates
            ]
            return self._rng.choices(candidates, weights=weights)[0]
        return None


def _weight(exercise: Exercise, slot: tuple[Pattern, ...], intent: PlanIntent, *, main: bool, repeat: bool) -> float:
    """How likely a coach is to put ``exercise`` in this slot, relative to the other candidates."""
    weight = 2.0 if exercise.patterns[0] in slot else 1.0
    if exercise.level is intent.level:
        weight *= 1.5
    if repeat:
        # A second deadlift variation after the deadlift is rarely what a coach writes.
        weight *= 0.2
    lifting = intent.goal in (Goal.STRENGTH, Goal.MUSCLE)
    if Pattern.CONDITIONING in exercise.patterns and Pattern.CONDITIONING not in slot and lifting:
        weight *= 0.2
    if intent.gear and not exercise.needs and Pattern.CORE not in exercise.patterns:
        # With equipment at hand, loadable exercises beat bodyweight ones.
        weight *= 0.3 if main else 0.6
    if main:
        if Gear.BARBELL in exercise.needs:
            weight *= 6.0 if lifting else 2.0
        if Gear.BAND in exercise.needs:
            weight *= 0.3
        if Gear.MACHINE in exercise.needs and intent.goal is Goal.STRENGTH:
            weight *= 0.5
        if exercise.level.rank < intent.level.rank - 1:
            weight *= 0.3
    return weight


def _prescribe(exercise: Exercise, slot: int, week: int, intent: PlanIntent, rng: random.Random) -> PrescribedExercise:
    index = week - 1
    deload = week in _DELOAD_WEEKS and not (week == PLAN_WEEKS and intent.goal is Goal.STRENGTH)
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


def _title(intent: PlanIntent, days: int, split_name: str) -> str:
    where = {Setting.HOME: "Home ", Setting.DUMBBELLS: "Dumbbell ", Setting.BODYWEIGHT: "Bodyweight "}.get(
        intent.setting, ""
    )
    return f"8-Week {where}{_GOAL_TITLES[intent.goal]} Plan: {days} Days per Week, {split_name}"


def _summary(intent: PlanIntent, days: int, split_name: str) -> str:
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
