"""Writing one week of a completed plan again: ``plan.week.requested`` to ``plan.week.generated``.

The week is written against the plan's stored skeleton (a plan written in one call gets one drawn
from its own weeks, ``skeleton_of_plan``), with the week as it stands and, if the user gave one,
their instruction ("fewer squats, my knee hurts"), which goes with the profile in the user's turn:
the week's own checks (``quality.week_problems``) then hold it to the joints and equipment it
names. Without an instruction the week must follow its skeleton block as any week does; with one it
keeps the block's training days and may change the exercises. Then the plan with the new week in
it is checked as a whole (``quality.plan_problems``, against the skeleton with the new week's days):
any problem the plan did not have before sends the week back to be written again, up to the
usual tries (``parts.PartWriter``, which keeps the written week, so a redelivery pays nothing
again). The persister stores the new version and swaps it in once its exercises have profiles.
"""

import logging
import time
import uuid

from contracts.events import WeekGenerated, WeekRequested
from contracts.exercise_keys import exercise_refs_of
from contracts.plan import (
    PlanSkeleton,
    SkeletonBlock,
    SkeletonDay,
    SkeletonWeek,
    TrainingDay,
    TrainingWeek,
    WorkoutPlan,
)
from contracts.progress import PlanProgress
from service_runtime.bus import EventPublisher, ProgressAnnouncer
from service_runtime.llm.metering import collecting_calls, publish_calls
from service_runtime.metrics import STAGE_SECONDS
from service_runtime.prompts import read_prompt
from services.planner.cancellation import Cancellations, unless_cancelled
from services.planner.parts import PartWriter, calls_for
from services.planner.planning import PLAN_PROMPT, PROMPTS, PlanPrompt, PromptPolicy, prompt_for
from services.planner.quality import plan_problems, week_off_skeleton, week_problems
from services.planner.scores import plan_scores

__all__ = ["PART", "WeekRewriting", "skeleton_of_plan", "skeleton_with_week"]

log = logging.getLogger(__name__)

WEEK_AGAIN_PROMPT = read_prompt(PROMPTS, "week-again-v1")
PART = "week-again"
_FOLLOW_SKELETON = "Follow the skeleton's block for this week."
_FOLLOW_USER = (
    "The user asked for a change to this week (in their message, after their profile): make it, changing"
    " only the exercises it concerns, and keep the rest of the skeleton's block."
)


class WeekRewriting:
    """The use case: one week written again, checked alone and within its plan, then published."""

    prompt_version = f"{WEEK_AGAIN_PROMPT.version}+{PLAN_PROMPT.version}"

    def __init__(
        self,
        parts: PartWriter,
        publisher: EventPublisher,
        *,
        progress: ProgressAnnouncer,
        cancellations: Cancellations,
        policy: PromptPolicy,
        tries: int,
    ) -> None:
        self._parts = parts
        self._publisher = publisher
        self._progress = progress
        self._cancellations = cancellations
        self._policy = policy
        self._tries = tries

    async def week_requested(self, request: WeekRequested) -> None:
        with calls_for(self._progress, request.request_id, request.user_id, request.lane):
            await self._week_requested(request)

    async def _week_requested(self, request: WeekRequested) -> None:
        async with self._cancellations.watching(request.request_id) as cancelled:
            if cancelled.is_set():
                log.info("request %s was cancelled; not writing its week", request.request_id)
                return
            await self._progress.announce(
                PlanProgress(request_id=request.request_id, status="processing", stage="generating")
            )
            started = time.monotonic()
            generated = await unless_cancelled(cancelled, self._generate(request))
            STAGE_SECONDS.labels("generating").observe(time.monotonic() - started)
            if generated is None:
                await self.abandon(request.request_id)
                log.info("request %s cancelled while its week was being written; dropped it", request.request_id)
                return
        await self._publisher.publish(generated)
        # The week itself is not shown early: its version number is given when it is swapped in.
        await self._progress.announce(
            PlanProgress(request_id=request.request_id, status="processing", stage="generated")
        )

    async def abandon(self, request_id: uuid.UUID) -> None:
        """Stop paying for the week's call if it is still running (a cancelled request)."""
        await self._parts.abandon(request_id, (PART,))

    async def _generate(self, request: WeekRequested) -> WeekGenerated:
        skeleton = request.skeleton or skeleton_of_plan(request.plan)
        base = prompt_for(request.user_profile, request.system_prompt, self._policy)
        instruction = (request.instruction or "").strip()
        # The instruction is the user's own words, so it travels in the user's turn with the profile.
        user = f"{base.user}\n\nWhat to change in week {request.week}: {instruction}" if instruction else base.user
        prompt = PlanPrompt(base.instructions, user)
        current = next(w for w in request.plan.weeks if w.week == request.week)
        brief = WEEK_AGAIN_PROMPT.text.format(
            week=request.week,
            change=_FOLLOW_USER if instruction else _FOLLOW_SKELETON,
            skeleton=skeleton.model_dump_json(),
            current=current.model_dump_json(),
        )
        before = set(plan_problems(request.plan, profile=request.user_profile, skeleton=skeleton))

        def problems(week: TrainingWeek) -> list[str]:
            if week.week != request.week:
                return [f"asked for week {request.week}, got week {week.week}"]
            found = week_problems(week, days_per_week=skeleton.days_per_week, profile=user)
            found += _off_block(week, skeleton, strict=not instruction)
            if found:
                return found
            plan, frame = _with_week(request.plan, skeleton, week)
            return [p for p in plan_problems(plan, profile=request.user_profile, skeleton=frame) if p not in before]

        with collecting_calls() as calls:
            try:
                written = await self._parts.write(
                    request.request_id,
                    PART,
                    TrainingWeek,
                    prompt.with_instructions(brief),
                    problems,
                    fresh=False,
                    tries=self._tries,
                    invalid_is_transient=False,
                )
            except BaseException:
                await publish_calls(self._publisher, calls)
                raise
        plan, frame = _with_week(request.plan, skeleton, written.parsed)
        return WeekGenerated(
            request_id=request.request_id,
            user_id=request.user_id,
            plan_id=request.plan_id,
            week=written.parsed,
            instruction=instruction or None,
            plan_revision=request.plan_revision,
            exercises=exercise_refs_of([written.parsed]),
            usage=written.usage,
            prompt_version=self.prompt_version,
            calls=tuple({call.call_id: call for call in calls}.values()),
            quality=plan_scores(plan, profile=request.user_profile, skeleton=frame),
        )


def _off_block(week: TrainingWeek, skeleton: PlanSkeleton, *, strict: bool) -> list[str]:
    """Strict: the week follows its block's days and exercises. Otherwise: its training days only."""
    if strict:
        return week_off_skeleton(week, skeleton)
    block = next(b for b in skeleton.blocks if week.week in b.weeks)
    planned, written = sorted(d.day for d in block.days), sorted(d.day for d in week.days)
    return [] if planned == written else [f"week {week.week} trains days {written}, not the plan's {planned}"]


def _with_week(plan: WorkoutPlan, skeleton: PlanSkeleton, week: TrainingWeek) -> tuple[WorkoutPlan, PlanSkeleton]:
    """The plan with ``week`` in place of its namesake, and the skeleton that week now follows."""
    weeks = [week if w.week == week.week else w for w in plan.weeks]
    return plan.model_copy(update={"weeks": weeks}), skeleton_with_week(skeleton, week)


def skeleton_with_week(skeleton: PlanSkeleton, week: TrainingWeek) -> PlanSkeleton:
    """``skeleton`` with ``week`` taken out of its block into a block of its own, of its own days."""
    blocks: list[SkeletonBlock] = []
    for block in skeleton.blocks:
        others = [n for n in block.weeks if n != week.week]
        if others:
            blocks.append(block.model_copy(update={"weeks": others}))
    blocks.append(SkeletonBlock(weeks=[week.week], days=[_skeleton_day(day) for day in week.days]))
    return skeleton.model_copy(update={"blocks": blocks})


def skeleton_of_plan(plan: WorkoutPlan) -> PlanSkeleton:
    """A skeleton drawn from a plan written in one call: each week its own block, deloads by theme."""
    weeks = sorted(plan.weeks, key=lambda w: w.week)
    return PlanSkeleton(
        title=plan.title,
        summary=plan.summary,
        days_per_week=len(weeks[0].days),
        progression="As the plan's weeks show.",
        blocks=[SkeletonBlock(weeks=[w.week], days=[_skeleton_day(day) for day in w.days]) for w in weeks],
        weeks=[SkeletonWeek(week=w.week, theme=w.theme, deload="deload" in w.theme.lower()) for w in weeks],
    )


def _skeleton_day(day: TrainingDay) -> SkeletonDay:
    return SkeletonDay(day=day.day, focus=day.focus, exercises=[item.name for item in day.exercises])
