"""Reading complete plans back: as the app sees them, as a week is written again from, and each
week's versions. Plain functions over one connection, for ``postgres.PostgresRequests``."""

# Deferred annotations: asyncpg's Pool and Record are generic only in its type stubs.
from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from operator import itemgetter
from typing import TypeAlias
from uuid import UUID

import asyncpg
from pydantic import ValidationError

from contracts.plan import PlanSkeleton, PrescribedExercise, TrainingDay, TrainingWeek, WorkoutPlan
from services.gateway.repository import RegenerationSource
from services.gateway.requests import NotRegenerable
from services.gateway.views import DayView, EntryView, ExerciseView, PlanView, WeekHistory, WeekVersionView, WeekView

__all__ = ["plan_view", "regeneration_source", "week_history", "written_weeks"]

Connection: TypeAlias = "asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"

_SELECT_PLAN = """
SELECT id, request_id, title, summary, created_at, completed_at
FROM workout_plans
WHERE id = $1 AND user_id = $2 AND assembly = 'complete' AND request_id IS NOT NULL
"""

# Entries by workout_plan_id (equal to plan_id): their one plan index leads with it (migration 0021).
_SELECT_ENTRIES = """
SELECT e.week, e.week_theme, e.day_of_week AS day, e.day_focus, e.position,
       x.key AS exercise_key, x.name AS exercise_name, x.profile AS exercise_profile,
       e.sets, e.reps, e.rest_seconds, e.notes
FROM workout_entries AS e
JOIN exercises AS x ON x.key = e.exercise_key
WHERE e.workout_plan_id = $1
ORDER BY e.week, e.day, e.position
"""


# The plan's revision: the newest stored version of any of its weeks (0: none written again).
_SELECT_SOURCE = """
SELECT p.title, p.summary, p.skeleton, r.user_profile, r.system_prompt,
       (SELECT coalesce(max(v.id), 0) FROM workout_week_versions v
        WHERE v.plan_id = p.id AND v.state <> 'pending') AS revision
FROM workout_plans AS p JOIN workout_plan_requests AS r ON r.id = p.request_id
WHERE p.id = $1 AND p.user_id = $2 AND p.assembly = 'complete'
"""

# The plan's own spelling of each exercise (the catalogue's name may differ), as it was written.
_SELECT_WRITTEN_WEEKS = """
SELECT week, week_theme, day_of_week AS day, day_focus, exercise_name, sets, reps, rest_seconds, notes
FROM workout_entries WHERE workout_plan_id = $1 ORDER BY week, day_of_week, position
"""

_SELECT_VERSIONS = """
SELECT version, state, instruction, content, quality, request_id, current_from
FROM workout_week_versions WHERE plan_id = $1 AND week = $2 AND state <> 'pending' ORDER BY version
"""


async def plan_view(conn: Connection, user_id: UUID, plan_id: UUID) -> PlanView | None:
    """The user's complete plan, nested for the app; None otherwise."""
    plan = await conn.fetchrow(_SELECT_PLAN, plan_id, user_id)
    if plan is None:
        return None
    # The entries come from one statement: a week swapped in meanwhile is read whole, before or after.
    entries = await conn.fetch(_SELECT_ENTRIES, plan_id)
    return PlanView(
        plan_id=plan["id"],
        request_id=plan["request_id"],
        title=plan["title"],
        summary=plan["summary"],
        created_at=plan["created_at"],
        completed_at=plan["completed_at"],
        weeks=_weeks(entries),
    )


async def regeneration_source(conn: Connection, user_id: UUID, plan_id: UUID) -> RegenerationSource | None:
    """The user's complete plan as a week is written again from; None otherwise."""
    plan = await conn.fetchrow(_SELECT_SOURCE, plan_id, user_id)
    if plan is None:
        return None
    entries = await conn.fetch(_SELECT_WRITTEN_WEEKS, plan_id)
    try:
        written = WorkoutPlan(title=plan["title"], summary=plan["summary"], weeks=written_weeks(entries))
        skeleton = None if plan["skeleton"] is None else PlanSkeleton.model_validate(plan["skeleton"])
    except ValidationError as exc:
        raise NotRegenerable(
            f"the stored plan is not one this service can write again ({exc.error_count()} problems)"
        ) from exc
    return RegenerationSource(written, skeleton, plan["user_profile"], plan["system_prompt"], plan["revision"])


async def week_history(conn: Connection, user_id: UUID, plan_id: UUID, week: int) -> WeekHistory | None:
    """Every version of a week of the user's complete plan, oldest first; None otherwise."""
    plan = await conn.fetchrow(_SELECT_PLAN, plan_id, user_id)
    if plan is None:
        return None
    rows = await conn.fetch(_SELECT_VERSIONS, plan_id, week)
    entries = [] if rows else await conn.fetch(_SELECT_WRITTEN_WEEKS, plan_id)
    if rows:
        versions = [
            WeekVersionView(
                version=row["version"],
                current=row["state"] == "current",
                theme=row["content"]["theme"],
                days=row["content"]["days"],
                instruction=row["instruction"],
                request_id=row["request_id"],
                quality=row["quality"],
                current_from=row["current_from"],
            )
            for row in rows
        ]
    else:  # never written again: the week as the plan was written is version 1
        first = next((w for w in written_weeks(entries) if w.week == week), None)
        if first is None:
            return None
        versions = [
            WeekVersionView(
                version=1,
                current=True,
                theme=first.theme,
                days=first.days,
                instruction=None,
                request_id=None,
                quality=None,
                current_from=plan["completed_at"],
            )
        ]
    current = next(v.version for v in versions if v.current)
    return WeekHistory(plan_id=plan_id, week=week, current_version=current, versions=versions)


def _weeks(rows: Sequence[asyncpg.Record]) -> list[WeekView]:
    """Nest entry rows, already ordered by week, day and position, into weeks of days."""
    weeks: list[WeekView] = []
    for week, grouped_week in groupby(rows, key=itemgetter("week")):
        week_rows = list(grouped_week)
        days: list[DayView] = []
        for day, grouped_day in groupby(week_rows, key=itemgetter("day")):
            day_rows = list(grouped_day)
            days.append(DayView(day=day, focus=day_rows[0]["day_focus"], entries=[_entry(row) for row in day_rows]))
        weeks.append(WeekView(week=week, theme=week_rows[0]["week_theme"], days=days))
    return weeks


def written_weeks(rows: Sequence[asyncpg.Record]) -> list[TrainingWeek]:
    """Entry rows, ordered by week, day and position, as the weeks the plan wrote."""
    return [
        TrainingWeek(
            week=week,
            theme=week_rows[0]["week_theme"],
            days=[
                TrainingDay(
                    day=day,
                    focus=day_rows[0]["day_focus"],
                    exercises=[
                        PrescribedExercise(
                            name=row["exercise_name"],
                            sets=row["sets"],
                            reps=row["reps"],
                            rest_seconds=row["rest_seconds"],
                            notes=row["notes"],
                        )
                        for row in day_rows
                    ],
                )
                for day, grouped_day in groupby(week_rows, key=itemgetter("day"))
                if (day_rows := list(grouped_day))
            ],
        )
        for week, grouped_week in groupby(rows, key=itemgetter("week"))
        if (week_rows := list(grouped_week))
    ]


def _entry(row: asyncpg.Record) -> EntryView:
    return EntryView(
        position=row["position"],
        exercise=ExerciseView(key=row["exercise_key"], name=row["exercise_name"], profile=row["exercise_profile"]),
        sets=row["sets"],
        reps=row["reps"],
        rest_seconds=row["rest_seconds"],
        notes=row["notes"],
    )
