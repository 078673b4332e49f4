"""Plan quality checks in code: what a schema cannot say about a coherent 8-week programme.

The schema already bounds sets (1-10), rest (0-600 s), days (1-7, distinct) and weeks (exactly
1..8). These checks look across the plan: the same number of training days every week, and the
number the profile asked for; reps that name a dose; deload weeks that are lighter than the week
before (no more sets x reps); loading that changes across the weeks; no exercise that loads a joint
the profile says hurts (knee, lower back, shoulder); weeks that follow their skeleton; no equipment for
a profile that has none. A plan with problems is repaired or regenerated, never stored.
"""

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import NamedTuple

from contracts.plan import PLAN_WEEKS, PlanOutline, PlanSkeleton, TrainingWeek, WorkoutPlan

__all__ = [
    "ProfileLimits",
    "deload_weeks",
    "loads_joint",
    "needs_missing_equipment",
    "plan_issues",
    "plan_problems",
    "prescription",
    "profile_limits",
    "requested_days",
    "spares",
    "split_problems",
    "troubled_joints",
    "volume",
    "week_off_skeleton",
    "week_problems",
    "weeks_to_rewrite",
]

_DAYS_ASKED = re.compile(
    r"\b([1-7])\s*(?:x|\u00d7|times|days?|sessions?)\s*(?:a|per|each|/)?\s*(?:week|wk)\b", re.IGNORECASE
)
_NO_EQUIPMENT = re.compile(r"\b(no equipment|bodyweight only|without equipment|no gym)\b", re.IGNORECASE)
_EQUIPMENT_WORDS = re.compile(
    r"\b(barbell|dumbbell|kettlebell|machine|cable|smith|ez[- ]bar|trap bar)\b", re.IGNORECASE
)
_CLAUSE = re.compile(r"[.,;!?\n]|\bbut\b")
_TROUBLE = re.compile(r"\b(pain|painful|hurts?|injur\w*|bad|sore|problem\w*|issues?|surgery|torn|tendinitis)\b")
# Exercises that load a joint, named the way models name them; kept narrow (no bench press, no
# flyes), so a plan is only sent back for what no coach would give that person.
_LOADS = {
    "knee": re.compile(
        r"\b(squat|lunge|leg press|leg extension|step-?up|jump|burpee|wall sit|thruster)", re.IGNORECASE
    ),
    "lower back": re.compile(
        r"\b(deadlift|good morning|back extension|bent-?over row|kettlebell swing)", re.IGNORECASE
    ),
    "shoulder": re.compile(
        r"\b(overhead press|shoulder press|arnold press|dips?\b|pike push-?up|overhead .*extension|thruster)",
        re.IGNORECASE,
    ),
}
_JOINTS = {
    "knee": re.compile(r"\bknees?\b", re.IGNORECASE),
    "lower back": re.compile(r"\b(lower back|back pain|lumbar)\b", re.IGNORECASE),
    "shoulder": re.compile(r"\bshoulders?\b", re.IGNORECASE),
}
_DOSE_NUMBER = re.compile(r"\d+")


class ProfileLimits(NamedTuple):
    """What a profile rules out, read once per profile (every exercise of every week is held to it)."""

    days: int | None  # ``requested_days``
    no_equipment: bool
    joints: tuple[str, ...]  # ``troubled_joints``, in that set's order

    @property
    def rule_out_any(self) -> bool:
        """Whether any exercise could break them (else no exercise name need be read)."""
        return self.no_equipment or bool(self.joints)


class _Demands(NamedTuple):
    equipment: bool  # names equipment (``_EQUIPMENT_WORDS``)
    joints: frozenset[str]  # the joints it loads (``loads_joint``)


@lru_cache(maxsize=256)
def profile_limits(profile: str) -> ProfileLimits:
    """``requested_days``, equipment and ``troubled_joints`` of ``profile``, cached: a plan asks for
    them once per week and exercise."""
    return ProfileLimits(requested_days(profile), bool(_NO_EQUIPMENT.search(profile)), tuple(troubled_joints(profile)))


@lru_cache(maxsize=4096)
def _demands(exercise: str) -> _Demands:
    # Names repeat across a plan's weeks and across plans: each is read once.
    return _Demands(bool(_EQUIPMENT_WORDS.search(exercise)), frozenset(j for j in _LOADS if loads_joint(exercise, j)))


def requested_days(profile: str) -> int | None:
    """Training days per week the profile asks for ("3x per week", "4 days a week"), if it says."""
    match = _DAYS_ASKED.search(profile)
    return int(match.group(1)) if match else None


def split_problems(frame: PlanSkeleton | PlanOutline, *, profile: str) -> list[str]:
    """Whether a skeleton (or outline) trains the days a week the profile asks for, in every block."""
    asked = profile_limits(profile).days
    if asked is not None and frame.days_per_week != asked:
        return [f"the skeleton trains {frame.days_per_week} days a week; the profile asks for {asked}"]
    days = [len(block.days) for block in frame.blocks]
    if any(n != frame.days_per_week for n in days):
        return [f"the skeleton's blocks have {days} days, not {frame.days_per_week}"]
    return []


def troubled_joints(profile: str) -> set[str]:
    """Joints the profile says hurt ("bad knee", "lower back pain", "shoulder injury")."""
    clauses = [clause for clause in _CLAUSE.split(profile.lower()) if _TROUBLE.search(clause)]
    return {joint for joint, named in _JOINTS.items() if any(named.search(clause) for clause in clauses)}


def week_problems(week: TrainingWeek, *, days_per_week: int | None, profile: str) -> list[str]:
    """What is wrong with one week on its own."""
    problems: list[str] = []
    limits = profile_limits(profile)
    screened = limits.rule_out_any
    if days_per_week is not None and len(week.days) != days_per_week:
        problems.append(f"week {week.week} has {len(week.days)} training days, not {days_per_week}")
    for day in week.days:
        for item in day.exercises:
            if _dose(item.reps) is None:
                problems.append(f"week {week.week} day {day.day}: {item.name!r} has no dose ({item.reps!r})")
            if not screened:
                continue
            demands = _demands(item.name)
            if limits.no_equipment and demands.equipment:
                problems.append(f"week {week.week} day {day.day}: {item.name!r} needs equipment the user has not got")
            for joint in limits.joints:
                if joint in demands.joints:
                    problems.append(f"week {week.week} day {day.day}: {item.name!r} loads the {joint} the user named")
    return problems


def needs_missing_equipment(exercise: str, profile: str) -> bool:
    """Whether ``exercise`` needs equipment a profile without any ("bodyweight only") has not got."""
    return profile_limits(profile).no_equipment and _demands(exercise).equipment


def spares(exercise: str, limits: ProfileLimits) -> tuple[bool, bool]:
    """Whether ``exercise`` needs no equipment ``limits`` rule out, and whether it spares their joints."""
    if not limits.rule_out_any:
        return True, True
    demands = _demands(exercise)
    return not (limits.no_equipment and demands.equipment), demands.joints.isdisjoint(limits.joints)


def loads_joint(exercise: str, joint: str) -> bool:
    """Whether ``exercise`` loads ``joint`` (one of ``troubled_joints``' names)."""
    return bool(_LOADS[joint].search(exercise))


def plan_problems(plan: WorkoutPlan, *, profile: str, skeleton: PlanSkeleton | None = None) -> list[str]:
    """Everything wrong with ``plan`` (empty: it may be stored)."""
    return [problem for problem, _ in plan_issues(plan, profile=profile, skeleton=skeleton)]


def plan_issues(
    plan: WorkoutPlan, *, profile: str, skeleton: PlanSkeleton | None = None
) -> list[tuple[str, frozenset[int]]]:
    """``plan_problems``, each with the weeks that writing again could mend (empty: none would)."""
    days_per_week = skeleton.days_per_week if skeleton is not None else len(plan.weeks[0].days)
    issues: list[tuple[str, frozenset[int]]] = []
    asked = profile_limits(profile).days
    if asked is not None and days_per_week != asked:
        issues.append((f"the plan trains {days_per_week} days a week; the profile asks for {asked}", frozenset()))
    weeks = sorted(plan.weeks, key=lambda w: w.week)
    for week in weeks:
        issues += [
            (problem, frozenset({week.week}))
            for problem in week_problems(week, days_per_week=days_per_week, profile=profile)
        ]
    deloads = deload_weeks(weeks, skeleton)
    for number in deloads:
        # Lighter loads do not show in sets and reps, so a deload only has to be no bigger.
        if number > 1 and volume(weeks[number - 1]) > volume(weeks[number - 2]):
            issues.append((f"deload week {number} has more volume than week {number - 1}", frozenset({number})))
    loading = {prescription(w) for w in weeks if w.week not in deloads}
    if len(loading) == 1:
        # Week 1 sets the starting point; the training weeks after it are the ones to progress.
        later = frozenset(w.week for w in weeks if w.week > 1 and w.week not in deloads)
        issues.append(("the loading never changes across the weeks: no progression", later))
    if skeleton is not None:
        issues += [(problem, frozenset({week.week})) for week in weeks for problem in week_off_skeleton(week, skeleton)]
    return issues


def weeks_to_rewrite(issues: list[tuple[str, frozenset[int]]]) -> frozenset[int]:
    """The weeks a second round writes again: those the issues name, or every week when one of them
    names none (nothing narrower would mend it)."""
    if any(not weeks for _, weeks in issues):
        return frozenset(range(1, PLAN_WEEKS + 1))
    return frozenset().union(*(weeks for _, weeks in issues))


def deload_weeks(weeks: Sequence[TrainingWeek], skeleton: PlanSkeleton | None) -> set[int]:
    """The deload weeks' numbers: the skeleton's, else the weeks whose theme says so."""
    if skeleton is not None:
        return {w.week for w in skeleton.weeks if w.deload}
    return {w.week for w in weeks if "deload" in w.theme.lower()}


def volume(week: TrainingWeek) -> int:
    """Sets times the first number of each dose ("8-10" counts 8, "30 s" counts 30)."""
    total = 0
    for day in week.days:
        for item in day.exercises:
            dose = _dose(item.reps)
            total += item.sets * (1 if dose is None else dose)
    return total


def prescription(week: TrainingWeek) -> tuple[tuple[int, str], ...]:
    """Each exercise's sets and reps, in order: what progression changes."""
    return tuple([(item.sets, item.reps) for day in week.days for item in day.exercises])


@lru_cache(maxsize=1024)
def _dose(reps: str) -> int | None:
    # The first number of a dose, None if it names none ("to failure"); a few doses serve every plan.
    number = _DOSE_NUMBER.search(reps)
    return int(number.group()) if number else None


def week_off_skeleton(week: TrainingWeek, skeleton: PlanSkeleton | PlanOutline) -> list[str]:
    """Whether ``week`` trains the days and exercises its skeleton (or outline) block says (in any order)."""
    block = next((b for b in skeleton.blocks if week.week in b.weeks), None)
    if block is None:
        return [f"the skeleton has no block for week {week.week}"]
    if [(d.day, [i.name for i in d.exercises]) for d in week.days] == [(d.day, d.exercises) for d in block.days]:
        return []  # written in the skeleton's own order: nothing to sort
    planned = {day.day: sorted(day.exercises) for day in block.days}
    written = {day.day: sorted(item.name for item in day.exercises) for day in week.days}
    return [] if written == planned else [f"week {week.week} does not follow the skeleton's days and exercises"]
