"""Plausible 8-week plans: a split chosen by days per week, exercises drawn from the catalogue,
progressive overload week to week and a deload in week 4 (and a lighter week 8).

``write_plan`` and ``skeleton_of`` are the surface; the private modules hold one job each:
``_splits`` (day templates and splits), ``_selection`` (choosing exercises), ``_prescription``
(sets, reps, rest and notes per week) and ``_wording`` (title, summary, themes).
"""

import random

from contracts.plan import (
    PLAN_WEEKS,
    PlanSkeleton,
    SkeletonBlock,
    SkeletonDay,
    SkeletonWeek,
    TrainingDay,
    TrainingWeek,
    WorkoutPlan,
)
from llm_simulator.intent import PlanIntent
from llm_simulator.plans._prescription import is_deload, prescribe
from llm_simulator.plans._selection import Selector
from llm_simulator.plans._splits import EXERCISES_PER_DAY, TRAINING_DAYS, split
from llm_simulator.plans._wording import PROGRESSION, THEMES, padded, plan_summary, plan_title

__all__ = ["is_deload", "skeleton_of", "write_plan"]


def write_plan(intent: PlanIntent, rng: random.Random, note_sentences: int = 0) -> WorkoutPlan:
    """A full 8-week plan for ``intent``; ``rng`` decides everything the intent leaves open.

    ``note_sentences`` extra coaching sentences per exercise make the plan longer (a more verbose
    model), for measuring time-to-plan at realistic sizes."""
    days = intent.days_per_week or rng.choice((3, 4))
    split_name, templates = split(days, intent, rng)
    low, high = EXERCISES_PER_DAY[intent.level]
    sizes = [rng.randint(low, high) for _ in templates]
    # Two blocks: the main lifts stay for all 8 weeks; accessories change at week 5 for variety.
    selector = Selector(intent, rng)
    block_one = selector.block(templates, sizes, previous=None)
    block_two = selector.block(templates, sizes, previous=block_one)
    weeks = []
    for week in range(1, PLAN_WEEKS + 1):
        block = block_one if week <= PLAN_WEEKS // 2 else block_two
        training_days = [
            TrainingDay(
                day=day_number,
                focus=template.focus,
                exercises=[prescribe(e, slot, week, intent, rng) for slot, e in enumerate(chosen)],
            )
            for day_number, template, chosen in zip(TRAINING_DAYS[days], templates, block, strict=True)
        ]
        if note_sentences:
            training_days = [padded(day, note_sentences, rng) for day in training_days]
        weeks.append(TrainingWeek(week=week, theme=THEMES[intent.goal][week - 1], days=training_days))
    return WorkoutPlan(
        title=plan_title(intent, days, split_name),
        summary=plan_summary(intent, days, split_name),
        weeks=weeks,
    )


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
        progression=PROGRESSION[intent.goal],
        blocks=blocks,
        weeks=[SkeletonWeek(week=w.week, theme=w.theme, deload=is_deload(w.week, intent)) for w in plan.weeks],
    )
