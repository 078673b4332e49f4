"""Quality scores of a plan that passed its checks: how well, not whether, it does each thing.

The checks (``quality.py``) decide whether a plan may be stored; these scores compare plans that
all passed, so a cheaper model or a new prompt is chosen on measured quality. Each is in [0, 1],
deterministic (the plan and the profile alone), and recorded with the plan, its prompt version
and its model (``PlanGenerated.quality``), and exported as ``workout_plan_quality``:

- ``days``: the share of weeks that train the days a week the profile asks for (1 when it does not say);
- ``progression``: the share of week-to-week steps between training weeks whose prescription changes;
- ``deload``: the share of deload weeks lighter (fewer sets x reps) than the week before; 0 without one;
- ``rest``: the share of exercises with 30-300 s of rest between sets;
- ``equipment``: the share of exercises that need no equipment the profile rules out;
- ``injury``: the share of exercises that spare the joints the profile says hurt;
- ``variety``: the share of a week's slots that are distinct exercises, averaged over the weeks;
- ``overall``: the mean of the above.
"""

from collections.abc import Sequence
from itertools import pairwise
from statistics import fmean

from contracts.events import QUALITY_DIMENSIONS
from contracts.plan import PlanSkeleton, TrainingWeek, WorkoutPlan
from services.planner.quality import deload_weeks, prescription, profile_limits, spares, volume

__all__ = ["DIMENSIONS", "plan_scores"]

DIMENSIONS = QUALITY_DIMENSIONS
_REST_SECONDS = range(30, 301)


def plan_scores(plan: WorkoutPlan, *, profile: str, skeleton: PlanSkeleton | None = None) -> dict[str, float]:
    """Each dimension's score and ``overall``, rounded to 3 places."""
    weeks = sorted(plan.weeks, key=lambda w: w.week)
    items = [item for week in weeks for day in week.days for item in day.exercises]
    deloads = deload_weeks(weeks, skeleton)
    limits = profile_limits(profile)
    # Nothing to read in a name when the profile rules nothing out: every exercise spares (1.0).
    spared = [spares(item.name, limits) for item in items] if limits.rule_out_any else []
    scores = {
        "days": 1.0 if limits.days is None else _share([len(week.days) == limits.days for week in weeks]),
        "progression": _progression(weeks, deloads),
        "deload": _share([volume(weeks[n - 1]) < volume(weeks[n - 2]) for n in sorted(deloads) if n > 1])
        if deloads
        else 0.0,
        "rest": _share([item.rest_seconds in _REST_SECONDS for item in items]),
        "equipment": _share([equipment for equipment, _ in spared]),
        "injury": _share([joints for _, joints in spared]),
        "variety": fmean(_distinct_share(week) for week in weeks),
    }
    scores["overall"] = fmean(scores.values())
    return {name: round(value, 3) for name, value in scores.items()}


def _progression(weeks: list[TrainingWeek], deloads: set[int]) -> float:
    loading = [(week.week, prescription(week)) for week in weeks]
    return _share(
        [before != after for (b, before), (a, after) in pairwise(loading) if b not in deloads and a not in deloads]
    )


def _distinct_share(week: TrainingWeek) -> float:
    names = [item.name.strip().lower() for day in week.days for item in day.exercises]
    return len(set(names)) / len(names) if names else 0.0


def _share(flags: Sequence[bool]) -> float:
    """The share of true flags; 1 when there are none (nothing to get wrong)."""
    return sum(flags) / len(flags) if flags else 1.0
