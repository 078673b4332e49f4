"""A generated plan's ``workout_entries`` rows, built in memory for the COPY in ``plan_rows``.

Pure: from the event's plan (JSON as the planner wrote it), the catalogue's rows for its
exercises and the plan's start date; no database call here.
"""

import datetime
import uuid
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, NamedTuple

from asyncpg.pgproto import pgproto

from contracts.events import ExerciseRef, TrustedPlanGenerated
from service_runtime.ids import uuid7_bytes
from service_runtime.outcomes import GiveUp

__all__ = [
    "ENTRY_COLUMNS",
    "WEEKDAYS",
    "CatalogueRow",
    "entry_records",
    "exercise_columns",
    "new_ids",
    "week_entry_records",
]

ENTRY_COLUMNS = (
    # A day's columns first, the same in each of its rows (``week_entry_records`` builds them once).
    "plan_id",
    "week",
    "day_of_week",
    "week_theme",
    "day_focus",
    # What the original app's columns need and the entries trigger would otherwise look up per row
    # (migration 0011), and the original's names for ours: with every one given and equal, the
    # trigger is not called at all (its WHEN clause, migration 0013).
    "date",
    "workout_plan_id",
    "week_number",
    "day",
    "day_name",
    # Made here (``new_ids``: time-ordered, see service_runtime/ids.py), not by the column's
    # default: gen_random_uuid() costs the server more per row than the rest of the row's insert but
    # its indexes (a build without OpenSSL, as pgserver's is, opens and reads /dev/urandom for each).
    "id",
    "position",
    "exercise_name",
    "sets",
    "reps",
    "rest_seconds",
    "notes",
    # The exercise's, the same wherever the plan names it.
    "exercise_key",
    "exercise_id",
    "equipment",
)

# The original app's ``weekday`` enum, by our day number (1 is Monday).
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class CatalogueRow(NamedTuple):
    """An exercise as its entries need it: its id, its equipment, and whether it had its profile."""

    id: uuid.UUID
    equipment: str | None
    profiled: bool


def entry_records(
    event: TrustedPlanGenerated,
    plan_id: uuid.UUID,
    catalogue: Mapping[str, CatalogueRow],
    start_date: datetime.date,
) -> list[tuple[Any, ...]]:
    """The plan's ``workout_entries`` rows, in ``ENTRY_COLUMNS`` order."""
    exercises = exercise_columns(event.exercises, catalogue)
    weeks = event.plan["weeks"]
    # The plan's entry ids in one call: a call per week cost more than the ids themselves.
    ids = iter(new_ids(sum(len(day["exercises"]) for week in weeks for day in week["days"])))
    return [row for week in weeks for row in week_entry_records(week, plan_id, exercises, start_date, ids)]


def exercise_columns(
    refs: Iterable[ExerciseRef], catalogue: Mapping[str, CatalogueRow]
) -> dict[str, tuple[str, uuid.UUID, str | None]]:
    """By exercise name, its entries' last columns (key, id, equipment), for the exercises the
    catalogue has."""
    return {ref.name: (ref.key, *catalogue[ref.key][:2]) for ref in refs if ref.key in catalogue}


def week_entry_records(
    week: Mapping[str, Any],
    plan_id: uuid.UUID,
    exercises: Mapping[str, tuple[str, uuid.UUID, str | None]],
    start_date: datetime.date,
    ids: Iterator[uuid.UUID] | None = None,
) -> list[tuple[Any, ...]]:
    """One week's ``workout_entries`` rows, in ``ENTRY_COLUMNS`` order, from the week as JSON (a
    ``TrainingWeek``'s fields; ``exercises``: ``exercise_columns``). An entry's date is the plan's
    start date moved to the entry's week and weekday (day 1 is a Monday), as 0008 dates them.
    Entry ids are taken from ``ids`` (``new_ids``), or made here."""
    number, theme, days = week["week"], week["theme"], week["days"]
    start_weekday = start_date.isoweekday()
    entry_ids = ids if ids is not None else iter(new_ids(sum(len(day["exercises"]) for day in days)))
    rows: list[tuple[Any, ...]] = []
    for day in days:
        weekday, focus = day["day"], day["focus"]
        date = start_date + datetime.timedelta(days=(number - 1) * 7 + (weekday - start_weekday + 7) % 7)
        head = (plan_id, number, weekday, theme, focus, date, plan_id, number, WEEKDAYS[weekday - 1], focus)
        for position, item in enumerate(day["exercises"], start=1):
            name = item["name"]
            exercise = exercises.get(name)
            if exercise is None:
                raise GiveUp("inconsistent_plan", f"exercise {name!r} is missing from the event's exercise list")
            # Concatenated, not unpacked into one tuple: a third less time per row (128 per plan).
            rows.append(
                head  # noqa: RUF005
                + (next(entry_ids), position, name, item["sets"], item["reps"], item["rest_seconds"], item["notes"])
                + exercise
            )
    return rows


def new_ids(count: int) -> list[uuid.UUID]:
    """``count`` new row ids, time-ordered (``service_runtime.ids``: each index they go into grows
    at its right edge), as asyncpg's own UUID type, which it sends without converting."""
    data = uuid7_bytes(count)
    return [pgproto.UUID(data[start : start + 16]) for start in range(0, len(data), 16)]
