"""The skeleton-then-weeks strategy: a skeleton first, then all eight weeks at once.

One call writes the program's skeleton (split, exercise selection per block, each week's theme,
which weeks are deloads); then eight calls, concurrently, each write one week against it; then the
plan is assembled and checked once, as a whole, with its skeleton (``quality.plan_problems``).
Time-to-plan is the skeleton plus the slowest week instead of the whole plan token by token.

Each finished part is kept (``FinishedParts``) before the next step, so a redelivery buys only
what was not finished; over background responses every part is a response recorded under
``<request id>.<part>``, so a redelivery re-attaches to the parts still being written too.

Paid calls, worst case (``tries`` = ``PLANNER_REPLY_ATTEMPTS``, the ladder of ``first_usable``):
the skeleton ``tries + 1`` (all eight weeks hang on it), each week ``tries`` per round, and a
second round when the assembled plan fails its checks, of the weeks the problems name (a deload
heavier than the week before: that week; no progression: the training weeks after week 1; all
eight when no week is to blame): per delivery at most ``(tries + 1) + 2 * 8 * tries``. A week
whose replies stay unusable is worth a redelivery (which buys only the weeks still missing);
everything else that stays wrong ends the request with ``plan_quality`` or ``invalid_llm_reply``,
and nothing of it is stored.
"""

import asyncio
import logging
import uuid
from functools import partial

from contracts.plan import PLAN_WEEKS, PlanSkeleton, TrainingWeek, WorkoutPlan
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

__all__ = ["PARTS", "SkeletonThenWeeks"]

log = logging.getLogger(__name__)

SKELETON_PROMPT = read_prompt(PROMPTS, "skeleton-v1")
WEEK_PROMPT = read_prompt(PROMPTS, "week-v3")
SKELETON_CONTEXT = read_prompt(PROMPTS, "skeleton-context-v2")

PARTS = ("skeleton", *(f"week{n}" for n in range(1, PLAN_WEEKS + 1)))


class SkeletonThenWeeks:
    prompt_version = f"{SKELETON_PROMPT.version}+{SKELETON_CONTEXT.version}+{WEEK_PROMPT.version}+{PLAN_PROMPT.version}"

    def __init__(
        self,
        calls: StructuredCalls,
        parts: FinishedParts,
        progress: ProgressAnnouncer,
        *,
        tries: int,
        max_concurrent_calls: int,
        known: KnownExercises | None = None,
        warmup_seconds: float = 0.0,
    ) -> None:
        self._parts = PartWriter(calls, parts, max_concurrent_calls=max_concurrent_calls)
        self._progress = progress
        self._tries = tries
        self._known = known
        self._warmup = warmup_seconds

    async def write(self, request_id: uuid.UUID, prompt: PlanPrompt) -> CheckedPlan:
        skeleton = await self._skeleton(request_id, prompt)
        prompt.checkpoint.reached(skeleton.parsed)
        paid = [skeleton.usage]  # every round's weeks were paid for, kept or not
        problems: list[str] = []
        rewrite: frozenset[int] = frozenset()
        for round_ in range(2):
            # The second round rewrites the weeks that made the plan fail (all, if none is to blame).
            weeks = await self._weeks(request_id, prompt, skeleton.parsed, rewrite=rewrite)
            paid += [week.usage for n, week in enumerate(weeks, start=1) if round_ == 0 or n in rewrite]
            plan = WorkoutPlan(
                title=skeleton.parsed.title, summary=skeleton.parsed.summary, weeks=[w.parsed for w in weeks]
            )
            issues = plan_issues(plan, profile=prompt.user, skeleton=skeleton.parsed)
            if not issues:
                return CheckedPlan(plan, total_usage(paid, self._parts.model), skeleton.parsed, self.prompt_version)
            problems = [problem for problem, _ in issues]
            rewrite = weeks_to_rewrite(issues)
            log.warning("request %s: the weeks do not fit together (%s)", request_id, "; ".join(problems))
        raise GiveUp("plan_quality", "; ".join(problems)[:1000])

    async def abandon(self, request_id: uuid.UUID) -> None:
        rounds = await written_rounds("skeleton", partial(self._parts.kept, request_id))
        await self._parts.abandon(request_id, (*PARTS, *rounds))

    async def _skeleton(self, request_id: uuid.UUID, prompt: PlanPrompt) -> StructuredReply[PlanSkeleton]:
        note = catalogue_note(await self._known.names()) if self._known is not None else None
        return await self._parts.write(
            request_id,
            prompt.checkpoint.part("skeleton"),
            PlanSkeleton,
            prompt.with_instructions(SKELETON_PROMPT.text, after=(note,) if note else ()),
            lambda frame: split_problems(frame, profile=prompt.user),
            fresh=False,
            # A ninth of a plan that all eight weeks hang on: one more try than a week gets (two
            # truncated skeletons in a row failed ~1 plan in 100 at 30 % faults). It fails within
            # its delivery, so a request that keeps getting unusable replies ends quickly.
            tries=self._tries + 1,
            invalid_is_transient=False,
        )

    async def _weeks(
        self, request_id: uuid.UUID, prompt: PlanPrompt, skeleton: PlanSkeleton, *, rewrite: frozenset[int]
    ) -> list[StructuredReply[TrainingWeek]]:
        """The eight weeks: those in ``rewrite`` written again, the others as kept (a first round:
        none kept yet, every week written and announced)."""
        done = 0
        context = SKELETON_CONTEXT.text.format(skeleton=skeleton.model_dump_json())

        async def week(number: int) -> StructuredReply[TrainingWeek]:
            nonlocal done
            fresh = number in rewrite
            if not rewrite and number > 1:
                # Week 1 writes the prefix they share into the provider's cache; the others read it.
                await self._parts.warmed(request_id, f"week{number}", self._warmup)

            def problems(week: TrainingWeek) -> list[str]:
                if week.week != number:
                    return [f"asked for week {number}, got week {week.week}"]
                return week_problems(
                    week, days_per_week=skeleton.days_per_week, profile=prompt.user
                ) + week_off_skeleton(week, skeleton)

            written = await self._parts.write(
                request_id,
                f"week{number}",
                TrainingWeek,
                prompt.shared_then(context, WEEK_PROMPT.text.format(week=number), cache_key=str(request_id)),
                problems,
                fresh=fresh,
                tries=self._tries,
                # A ninth of a plan, eight at once: unusable replies are worth another delivery
                # (which buys only the weeks still missing) rather than failing the request.
                invalid_is_transient=True,
            )
            done += 1
            await announce_week(self._progress, request_id, written.parsed, done=done, rewrite=rewrite)
            return written

        # Every week runs to its end even when another fails: what succeeded is kept for the
        # redelivery, and no call is still running when the message goes back to the server (a
        # redelivery racing a live call for the same week would buy that week twice).
        outcomes = await asyncio.gather(*(week(n) for n in range(1, PLAN_WEEKS + 1)), return_exceptions=True)
        return all_or_first_failure(outcomes)
