"""Which exercises fill a block's days: drawn from the catalogue entries the person can do,
weighted the way a coach would choose."""

import random

from llm_simulator.catalogue import Exercise, Gear, Pattern, exercises
from llm_simulator.intent import Goal, PlanIntent
from llm_simulator.plans._splits import CONDITIONING_DAY, Day

P = Pattern

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

_MIN_EXERCISES = 4
_FILLERS = (P.CORE, P.CONDITIONING, P.GLUTES)


def _allowed(exercise: Exercise, intent: PlanIntent) -> bool:
    return (
        exercise.needs <= intent.gear
        and not exercise.stresses & intent.injuries
        and exercise.level.rank <= intent.level.rank
    )


class Selector:
    """Chooses each day's exercises for one 4-week block, spreading variety across the week."""

    def __init__(self, intent: PlanIntent, rng: random.Random) -> None:
        self._intent = intent
        self._rng = rng
        self._pool = [e for e in exercises() if _allowed(e, intent)]

    def block(
        self, templates: list[Day], sizes: list[int], previous: list[list[Exercise]] | None
    ) -> list[list[Exercise]]:
        """One exercise list per template; with ``previous``, keep its main lifts and re-draw the rest."""
        used_in_block: set[str] = set()
        block: list[list[Exercise]] = []
        for index, (template, size) in enumerate(zip(templates, sizes, strict=True)):
            day = list(previous[index][:2]) if previous else []
            avoid = {e.name for e in previous[index][2:]} if previous else set()
            slots = template.slots[len(day) :]
            if self._intent.goal is Goal.FAT_LOSS and template is not CONDITIONING_DAY:
                # Fat-loss days end with a conditioning finisher instead of their last isolation slot.
                slots = (*slots[: max(0, size - len(day) - 1)], (P.CONDITIONING,))
            for offset, patterns in enumerate(slots):
                if len(day) >= size:
                    break
                main = previous is None and offset < 2 and template is not CONDITIONING_DAY
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
