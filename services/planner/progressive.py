"""Progressive generation: a short outline, then every week in parts, the first week first and finest.

What a waiting person sees first is week 1, and a model writes at its token rate: a ~2k-token week in
one call takes ~30 s at 60 tokens/s, whatever runs beside it. So the first week is written in
small parts at once, after the shortest outline that can steer them:

1. One call writes the outline (``PlanOutline``: days per week, the blocks with each day's focus
   and exercises, each week's theme and whether it is a deload; no prose), ~330 tokens where the
   parallel strategy's skeleton is ~550. Every week waits for it.
2. Then, all at once: the overview (``PlanOverview``: title, summary, progression, written against
   the outline) and every week in parts, each part some of one training day's exercises
   (``TrainingDay`` replies): at most ``exercises_per_call`` per part, at most
   ``first_week_exercises_per_call`` in week 1. Parts are queued week by week, so when the
   process's call slots are all busy week 1's go first.
3. Each week is assembled as soon as its parts are written, checked against the outline
   (``week_problems``, ``week_off_skeleton``) and announced (``weeks_done``) while later weeks are
   still being written.
4. The plan (the overview's words, the eight weeks) is checked as a whole with its skeleton, as in
   the parallel strategy; a plan whose weeks do not fit together gets its weeks rewritten once.

Each part is checked on its own before it is kept (the day and exercises it was asked for, in
order; a dose; nothing the profile rules out), so an unusable reply costs one part, not a week.
Parts are kept and re-attached like the parallel strategy's (``parts.PartWriter``): a redelivery
buys only the parts that were not finished.
"""

import asyncio
import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from contracts.events import LlmUsage
from contracts.plan import (
    PLAN_WEEKS,
    PlanOutline,
    PlanOverview,
    PlanSkeleton,
    SkeletonDay,
    TrainingDay,
    TrainingWeek,
    WorkoutPlan,
)
from service_runtime.bus import ProgressAnnouncer
from service_runtime.llm import StructuredCalls, StructuredReply
from service_runtime.llm.port import total_usage
from service_runtime.outcomes import GiveUp
from service_runtime.prompts import read_prompt
from services.planner.parts import (
    FinishedParts,
    KnownExercises,
    PartWriter,
    all_or_first_failure,
    announce_week,
    catalogue_note,
)
from services.planner.planning import PLAN_PROMPT, PROMPTS, CheckedPlan, PlanPrompt
from services.planner.quality import plan_issues, split_problems, week_off_skeleton, week_problems, weeks_to_rewrite
from services.planner.review import written_rounds

__all__ = ["ProgressiveWeeks", "day_parts"]

log = logging.getLogger(__name__)

OUTLINE_PROMPT = read_prompt(PROMPTS, "outline-v1")
OUTLINE_CONTEXT = read_prompt(PROMPTS, "outline-context-v2")
OVERVIEW_PROMPT = read_prompt(PROMPTS, "overview-v1")
DAY_PROMPT = read_prompt(PROMPTS, "day-v3")


def day_parts(exercises: Sequence[str], most: int) -> list[list[str]]:
    """``exercises`` in consecutive parts of at most ``most``, as even as they can be."""
    count = max(1, math.ceil(len(exercises) / most))
    size, extra = divmod(len(exercises), count)
    parts, start = [], 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        parts.append(list(exercises[start:end]))
        start = end
    return parts


@dataclass(frozen=True)
class _DayPart:
    """One call's share of a week: some of one training day's exercises."""

    name: str
    week: int
    theme: str
    day: SkeletonDay
    exercises: list[str]


class ProgressiveWeeks:
    prompt_version = (
        f"{OUTLINE_PROMPT.version}+{OUTLINE_CONTEXT.version}+{OVERVIEW_PROMPT.version}"
        f"+{DAY_PROMPT.version}+{PLAN_PROMPT.version}"
    )

    def __init__(
        self,
        calls: StructuredCalls,
        parts: FinishedParts,
        progress: ProgressAnnouncer,
        *,
        tries: int,
        max_concurrent_calls: int,
        exercises_per_call: int,
        first_week_exercises_per_call: int,
        known: KnownExercises | None = None,
        warmup_seconds: float = 0.0,
    ) -> None:
        self._parts = PartWriter(calls, parts, max_concurrent_calls=max_concurrent_calls)
        self._kept = parts
        self._progress = progress
        self._tries = tries
        self._per_call = exercises_per_call
        self._first_week_per_call = first_week_exercises_per_call
        self._known = known
        self._warmup = warmup_seconds

    async def write(self, request_id: uuid.UUID, prompt: PlanPrompt) -> CheckedPlan:
        outline = await self._outline(request_id, prompt)
        prompt.checkpoint.reached(outline.parsed)
        context = OUTLINE_CONTEXT.text.format(outline=outline.parsed.model_dump_json())
        overview = asyncio.create_task(self._overview(request_id, prompt, context))
        paid = [outline.usage]
        problems: list[str] = []
        rewrite: frozenset[int] = frozenset()
        try:
            for round_ in range(2):
                # The second round rewrites the weeks that made the plan fail (all, if none is to blame).
                weeks = await self._weeks(request_id, prompt, outline.parsed, context, rewrite=rewrite)
                paid += [usage for n, (_, used) in enumerate(weeks, 1) if round_ == 0 or n in rewrite for usage in used]
                if round_ == 0:
                    paid.append((await overview).usage)
                words = overview.result().parsed
                skeleton = PlanSkeleton.of(outline.parsed, words)
                plan = WorkoutPlan(title=words.title, summary=words.summary, weeks=[week for week, _ in weeks])
                issues = plan_issues(plan, profile=prompt.user, skeleton=skeleton)
                if not issues:
                    return CheckedPlan(plan, total_usage(paid, self._parts.model), skeleton, self.prompt_version)
                problems = [problem for problem, _ in issues]
                rewrite = weeks_to_rewrite(issues)
                log.warning("request %s: the weeks do not fit together (%s)", request_id, "; ".join(problems))
        finally:
            # A failed week fails the delivery: the overview still finishes (and is kept) first,
            # so no call is left running when the message goes back to the server.
            await asyncio.gather(overview, return_exceptions=True)
        raise GiveUp("plan_quality", "; ".join(problems)[:1000])

    async def abandon(self, request_id: uuid.UUID) -> None:
        # Every round of the outline (an adjusted one is written again), the weeks' parts by the newest.
        frames = ["outline", *await written_rounds("outline", partial(self._parts.kept, request_id))]
        names = list(frames)
        kept = None
        for frame in frames:
            kept = await self._kept.get(request_id, frame) or kept
        if kept is not None:
            outline = PlanOutline.model_validate_json(kept.reply)
            names += [
                "overview",
                *(part.name for week in range(1, PLAN_WEEKS + 1) for part in self._plan(outline, week)),
            ]
        await self._parts.abandon(request_id, names)

    async def _outline(self, request_id: uuid.UUID, prompt: PlanPrompt) -> StructuredReply[PlanOutline]:
        note = catalogue_note(await self._known.names()) if self._known is not None else None
        return await self._parts.write(
            request_id,
            prompt.checkpoint.part("outline"),
            PlanOutline,
            prompt.with_instructions(OUTLINE_PROMPT.text, after=(note,) if note else ()),
            lambda frame: split_problems(frame, profile=prompt.user),
            fresh=False,
            # Everything hangs on it: one more try than a part gets, as the parallel skeleton.
            tries=self._tries + 1,
            invalid_is_transient=False,
        )

    async def _overview(self, request_id: uuid.UUID, prompt: PlanPrompt, context: str) -> StructuredReply[PlanOverview]:
        return await self._parts.write(
            request_id,
            "overview",
            PlanOverview,
            prompt.with_instructions(after=(context, OVERVIEW_PROMPT.text)),
            lambda _: [],
            fresh=False,
            tries=self._tries,
            invalid_is_transient=True,
        )

    def _plan(self, outline: PlanOutline, week: int) -> list[_DayPart]:
        """Week ``week``'s parts, in the order of its days and their exercises."""
        block = next(b for b in outline.blocks if week in b.weeks)
        theme = next(w.theme for w in outline.weeks if w.week == week)
        most = self._first_week_per_call if week == 1 else self._per_call
        return [
            _DayPart(f"week{week}.day{day.day}.{index}", week, theme, day, names)
            for day in block.days
            for index, names in enumerate(day_parts(day.exercises, most), start=1)
        ]

    async def _weeks(
        self,
        request_id: uuid.UUID,
        prompt: PlanPrompt,
        outline: PlanOutline,
        context: str,
        *,
        rewrite: frozenset[int],
    ) -> list[tuple[TrainingWeek, list[LlmUsage]]]:
        """The eight weeks: those in ``rewrite`` written again, the others from their kept parts (a
        first round: none kept yet, every week written and announced)."""
        done = 0

        async def week(
            number: int, parts: list["asyncio.Task[StructuredReply[TrainingDay]]"]
        ) -> tuple[TrainingWeek, list[LlmUsage]]:
            nonlocal done
            written = all_or_first_failure(await asyncio.gather(*parts, return_exceptions=True))
            theme = next(w.theme for w in outline.weeks if w.week == number)
            days: dict[int, TrainingDay] = {}
            for reply in written:
                day = reply.parsed
                if day.day in days:  # the day's next part: its exercises follow the ones before
                    day = days[day.day].model_copy(update={"exercises": [*days[day.day].exercises, *day.exercises]})
                days[day.day] = day
            assembled = TrainingWeek(week=number, theme=theme, days=list(days.values()))
            problems = week_problems(
                assembled, days_per_week=outline.days_per_week, profile=prompt.user
            ) + week_off_skeleton(assembled, outline)
            if problems:
                raise GiveUp("plan_quality", "; ".join(problems)[:1000])
            done += 1
            await announce_week(self._progress, request_id, assembled, done=done, rewrite=rewrite)
            return assembled, [reply.usage for reply in written]

        # Every part is started now, week 1's first; every one runs to its end even when another
        # fails, so what succeeded is kept for the redelivery and no call outlives the delivery.
        weeks = []
        for number in range(1, PLAN_WEEKS + 1):
            parts = [
                asyncio.create_task(
                    self._day_part(
                        request_id,
                        prompt,
                        context,
                        part,
                        fresh=number in rewrite,
                        # The first part writes the prefix all share into the provider's cache.
                        warmup=self._warmup if not rewrite and (number, index) != (1, 0) else 0.0,
                    )
                )
                for index, part in enumerate(self._plan(outline, number))
            ]
            weeks.append(week(number, parts))
        return all_or_first_failure(await asyncio.gather(*weeks, return_exceptions=True))

    async def _day_part(
        self,
        request_id: uuid.UUID,
        prompt: PlanPrompt,
        context: str,
        part: _DayPart,
        *,
        fresh: bool,
        warmup: float = 0.0,
    ) -> StructuredReply[TrainingDay]:
        await self._parts.warmed(request_id, part.name, warmup)
        day, week, exercises = part.day, part.week, part.exercises
        brief = DAY_PROMPT.text.format(
            week=week, day=day.day, focus=day.focus, theme=part.theme, exercises="; ".join(exercises)
        )

        def problems(written: TrainingDay) -> list[str]:
            if written.day != day.day:
                return [f"asked for day {day.day} of week {week}, got day {written.day}"]
            names = [item.name for item in written.exercises]
            if names != exercises:
                return [f"week {week} day {day.day}: asked for {exercises}, got {names}"]
            alone = TrainingWeek(week=week, theme=part.theme, days=[written])
            return week_problems(alone, days_per_week=None, profile=prompt.user)

        return await self._parts.write(
            request_id,
            part.name,
            TrainingDay,
            prompt.shared_then(context, brief, cache_key=str(request_id)),
            problems,
            fresh=fresh,
            tries=self._tries,
            # A small part among dozens: unusable replies are worth another delivery (which buys
            # only the parts still missing) rather than failing the request.
            invalid_is_transient=True,
        )
