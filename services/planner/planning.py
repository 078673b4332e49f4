"""Planning: from a request to a published plan, free of broker and SDK details.

How a plan is written is a strategy (``PlanWriter``): ``single.SingleCall`` (one call) or
``skeleton_weeks.SkeletonThenWeeks`` (a skeleton, then the eight weeks at once), each over the
structured-call port (``service_runtime.llm``), each returning a plan that passed its checks.
This use case keeps a paid-for plan until its events are out, stops work on cancelled requests,
and publishes the plan and progress (the persister asks for the profiles the catalogue lacks).
"""

import asyncio
import logging
import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

from contracts.events import LlmUsage, PlanAwaitingReview, PlanCancelled, PlanGenerated, PlanRequested
from contracts.exercise_keys import distinct_by_key, exercise_refs
from contracts.plan import PlanSkeleton, WorkoutPlan
from contracts.progress import PlanProgress
from service_runtime.bus import EventPublisher, ProgressAnnouncer
from service_runtime.llm import Prompt
from service_runtime.llm.metering import collecting_calls, publish_calls
from service_runtime.metrics import PLAN_COST_USD, PLAN_QUALITY, STAGE_SECONDS
from service_runtime.prompts import read_prompt
from services.planner.cancellation import Cancellations, unless_cancelled
from services.planner.parts import calls_for, first_delivery
from services.planner.review import AwaitingReview, Checkpoint, checkpoint_of, with_adjustments
from services.planner.scores import plan_scores

log = logging.getLogger(__name__)

PROMPTS = Path(__file__).parent / "prompts"
# The whole plan's rules: the single call's instructions, and the rules every parallel part follows.
PLAN_PROMPT = read_prompt(PROMPTS, "plan-v1")
INSTRUCTIONS = PLAN_PROMPT.text


@dataclass(frozen=True)
class CheckedPlan:
    """A plan that passed its checks, what all the calls that wrote it cost, and the skeleton it was
    written against (None: written in one call)."""

    plan: WorkoutPlan
    usage: LlmUsage
    skeleton: PlanSkeleton | None = None
    prompt_version: str = ""  # the writer's, when it does not say


class PlanWriter(Protocol):
    """How a plan is written (a strategy). Raises ``RetryLater``/``GiveUp`` (service_runtime.outcomes).

    ``request_id`` names the calls: over an adapter that can resume a call (background responses)
    a redelivery re-attaches to the ones already started for this request instead of paying again."""

    prompt_version: str  # the prompt files it writes with, recorded on the plan

    async def write(self, request_id: uuid.UUID, prompt: "PlanPrompt") -> CheckedPlan: ...

    async def abandon(self, request_id: uuid.UUID) -> None:
        """The request was cancelled: stop any call still running for it at the provider."""
        ...


class GeneratedPlans(Protocol):
    """Where a paid-for plan is kept until its events are published, so a redelivery reuses it."""

    async def begin(self, request_id: uuid.UUID) -> bool:
        """Mark the request's plan begun (for good); True when no delivery had begun it before, so
        nothing of it can be kept yet: no plan, no part."""
        ...

    async def get(self, request_id: uuid.UUID) -> PlanGenerated | None: ...

    async def put(self, event: PlanGenerated) -> None: ...


@dataclass(frozen=True)
class PromptPolicy:
    max_system_prompt_chars: int
    allow_override: bool


@dataclass(frozen=True)
class PlanPrompt:
    """What one plan is written from: our instructions (the system role) and the user's turn (the
    profile, then any preferences the app sent)."""

    instructions: list[str]
    user: str
    checkpoint: Checkpoint = field(default_factory=Checkpoint)

    def with_instructions(self, *before: str, after: tuple[str, ...] = ()) -> Prompt:
        """The prompt of one call: a part's own instructions, then ours, then ``after``."""
        return Prompt((*before, *self.instructions, *after), self.user)

    def shared_then(self, context: str, ask: str, *, cache_key: str) -> Prompt:
        """The prompt of one of several calls of a request that share all but their ``ask``: our
        instructions, the ``context`` they share (a skeleton, an outline), the user's turn, then the
        call's own ask. The shared part comes first so the provider serves it from its prompt cache
        after the first call (``cache_key``: the request's, to land the calls on one cache)."""
        return Prompt((*self.instructions, context), self.user, after=(ask,), cache_key=cache_key)


# The client's systemPrompt arrives as the app's words, so it is sent as the user's, framed as the
# app's preferences: with a real model the system role carries authority no client may claim.
PREFERENCES_HEADING = "Preferences the app sent with this request (the instructions above still apply):"


def prompt_for(user_profile: str, system_prompt: str | None, policy: PromptPolicy) -> PlanPrompt:
    """The prompt of a request. Its systemPrompt is untrusted input: capped, and sent as user-level
    content after the profile, unless an operator allowed it to replace our instructions."""
    client_prompt = (system_prompt or "").strip()[: policy.max_system_prompt_chars]
    if not client_prompt:
        return PlanPrompt([INSTRUCTIONS], user_profile)
    if policy.allow_override:
        return PlanPrompt([client_prompt], user_profile)
    return PlanPrompt([INSTRUCTIONS], f"{user_profile}\n\n{PREFERENCES_HEADING}\n{client_prompt}")


class Planning:
    def __init__(
        self,
        writer: PlanWriter,
        plans: GeneratedPlans,
        publisher: EventPublisher,
        *,
        progress: ProgressAnnouncer,
        cancellations: Cancellations,
        policy: PromptPolicy,
    ) -> None:
        self._writer = writer
        self._plans = plans
        self._publisher = publisher
        self._progress = progress
        self._cancellations = cancellations
        self._policy = policy

    async def plan_requested(self, request: PlanRequested) -> None:
        with calls_for(self._progress, request.request_id, request.user_id, request.lane):
            await self._plan_requested(request)

    async def _plan_requested(self, request: PlanRequested) -> None:
        async with self._cancellations.watching(request.request_id) as cancelled:
            if cancelled.is_set():
                log.info("request %s was cancelled; not planning it", request.request_id)
                return
            # A request's first delivery (almost every one) has nothing kept to look for: one write
            # here instead of a read of the plan and of each part (``parts.first_delivery``).
            first = await self._plans.begin(request.request_id)
            generated = None if first else await self._plans.get(request.request_id)
            if generated is None:
                await self._progress.announce(
                    PlanProgress(request_id=request.request_id, status="processing", stage="generating")
                )
                STAGE_SECONDS.labels("queued").observe(max(0.0, time.time() - request.occurred_at.timestamp()))
                started = time.monotonic()
                try:
                    with first_delivery(request.request_id) if first else nullcontext():
                        generated = await unless_cancelled(cancelled, self._generate(request))
                except AwaitingReview as waiting:
                    await self._await_review(request, waiting)
                    return
                STAGE_SECONDS.labels("generating").observe(time.monotonic() - started)
                if generated is None:
                    await self._writer.abandon(request.request_id)
                    log.info("request %s cancelled while its plan was being written; dropped it", request.request_id)
                    return
        # The persister asks the profiler for the exercises the catalogue lacks, once it has stored this.
        await self._publisher.publish(generated)
        distinct = distinct_by_key(generated.exercises)
        await self._progress.announce(
            PlanProgress(
                request_id=request.request_id,
                status="processing",
                stage="generated",
                exercises_total=len(distinct),
            )
        )

    async def _await_review(self, request: PlanRequested, waiting: AwaitingReview) -> None:
        """The skeleton is written; the user decides what comes next (the persister marks the request
        ``waiting``). Its calls are on the ledger already; nothing is held meanwhile."""
        round_ = request.review.round if request.review is not None else 0
        await self._publisher.publish(
            PlanAwaitingReview(
                request_id=request.request_id,
                user_id=request.user_id,
                outline=waiting.outline,
                round=round_,
                review_seconds=request.review_seconds,
            )
        )
        await self._progress.announce(
            PlanProgress(
                request_id=request.request_id,
                status="processing",
                stage="waiting",
                outline=waiting.outline,
                review_until=datetime.now(UTC) + timedelta(seconds=request.review_seconds),
            )
        )
        log.info("request %s: skeleton (round %d) shown; waiting for the user", request.request_id, round_)

    async def plan_cancelled(self, event: PlanCancelled) -> None:
        """Mark the request for every replica and stop its call at the provider, wherever it runs."""
        await self._cancellations.mark(event.request_id)
        await self._writer.abandon(event.request_id)

    async def _generate(self, request: PlanRequested) -> PlanGenerated:
        # The ledger records of the calls whose replies make the plan travel inside it; when no
        # plan comes of this delivery (a failure, a cancel), every record it knows is published
        # now (again, for parts kept earlier: the persister stores each call once).
        with collecting_calls() as calls:
            try:
                prompt = prompt_for(request.user_profile, request.system_prompt, self._policy)
                adjustments = request.review.adjustments if request.review is not None else ()
                prompt = PlanPrompt(
                    prompt.instructions, with_adjustments(prompt.user, adjustments), checkpoint_of(request)
                )
                checked = await self._writer.write(request.request_id, prompt)
            except BaseException:
                await asyncio.shield(publish_calls(self._publisher, calls))
                raise
        paid = tuple({call.call_id: call for call in calls}.values())
        quality = plan_scores(checked.plan, profile=request.user_profile, skeleton=checked.skeleton)
        generated = PlanGenerated(
            prompt_version=checked.prompt_version or self._writer.prompt_version,
            request_id=request.request_id,
            user_id=request.user_id,
            plan=checked.plan,
            exercises=exercise_refs(checked.plan),
            usage=checked.usage,
            calls=paid,
            quality=quality,
            skeleton=checked.skeleton,
        )
        observe_plan(generated, cost_usd=sum(call.cost_usd for call in paid))
        # Kept before publishing: if a publish fails, the redelivery publishes this, not a new call.
        await self._plans.put(generated)
        return generated


def observe_plan(generated: PlanGenerated, *, cost_usd: float) -> None:
    """A new plan's quality scores and cost, by prompt version and model (the dashboard compares them)."""
    labels = (generated.prompt_version, generated.usage.model)
    for dimension, score in generated.quality.items():
        PLAN_QUALITY.labels(dimension, *labels).observe(score)
    PLAN_COST_USD.labels(*labels).observe(cost_usd)
