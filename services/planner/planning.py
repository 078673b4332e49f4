"""Planning: from a request to a stored-or-published plan, free of broker and SDK details."""

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from contracts.events import ExerciseProfileNeeded, LlmUsage, PlanCancelled, PlanGenerated, PlanRequested
from contracts.plan import WorkoutPlan
from contracts.progress import PlanProgress
from service_runtime.bus import EventPublisher, ProgressAnnouncer
from service_runtime.delivery import GiveUp
from service_runtime.metrics import STAGE_SECONDS
from service_runtime.prompts import read_prompt
from services.planner.cancellation import Cancellations, unless_cancelled
from services.planner.catalogue import distinct_by_key, exercise_refs
from services.planner.quality import plan_problems

log = logging.getLogger(__name__)

PROMPTS = Path(__file__).parent / "prompts"
# The whole plan's rules: the single call's instructions, and the rules every parallel part follows.
PLAN_PROMPT = read_prompt(PROMPTS, "plan-v1")
INSTRUCTIONS = PLAN_PROMPT.text


@dataclass(frozen=True)
class PlanDraft:
    plan: WorkoutPlan
    usage: LlmUsage


class PlanWriter(Protocol):
    """Port to the LLM. Raises ``RetryLater``/``GiveUp`` (service_runtime.delivery) on faults.

    ``request_id`` names the call: a writer that can resume a call (background mode) finds the
    one it already started for this request instead of paying for another. ``instructions`` go in
    the system role and are ours alone; ``user_profile`` is the user's turn (``PlanPrompt.user``:
    the profile, then any preferences the app sent)."""

    prompt_version: str  # the prompt files it writes with, recorded on the plan

    async def write(self, request_id: uuid.UUID, instructions: list[str], user_profile: str) -> PlanDraft: ...

    async def abandon(self, request_id: uuid.UUID) -> None:
        """The request was cancelled: stop any call still running for it at the provider."""
        ...


class DraftStore(Protocol):
    """Where a paid-for plan is kept until its events are published, so a redelivery reuses it."""

    async def get(self, request: PlanRequested) -> PlanGenerated | None: ...

    async def put(self, event: PlanGenerated) -> None: ...


@dataclass(frozen=True)
class PromptPolicy:
    max_system_prompt_chars: int
    allow_override: bool


@dataclass(frozen=True)
class PlanPrompt:
    """What one plan is written from: our instructions (the system role) and the user's turn."""

    instructions: list[str]
    user: str


# The client's systemPrompt arrives as the app's words, so it is sent as the user's, framed as the
# app's preferences: with a real model the system role carries authority no client may claim.
PREFERENCES_HEADING = "Preferences the app sent with this request (the instructions above still apply):"


def prompt_for(request: PlanRequested, policy: PromptPolicy) -> PlanPrompt:
    """The prompt of a request. Its systemPrompt is untrusted input: capped, and sent as user-level
    content after the profile, unless an operator allowed it to replace our instructions."""
    client_prompt = (request.system_prompt or "").strip()[: policy.max_system_prompt_chars]
    if not client_prompt:
        return PlanPrompt([INSTRUCTIONS], request.user_profile)
    if policy.allow_override:
        return PlanPrompt([client_prompt], request.user_profile)
    return PlanPrompt([INSTRUCTIONS], f"{request.user_profile}\n\n{PREFERENCES_HEADING}\n{client_prompt}")


class Planning:
    def __init__(
        self,
        writer: PlanWriter,
        drafts: DraftStore,
        publisher: EventPublisher,
        *,
        progress: ProgressAnnouncer,
        cancellations: Cancellations,
        policy: PromptPolicy,
        quality_attempts: int = 2,
    ) -> None:
        self._writer = writer
        self._drafts = drafts
        self._publisher = publisher
        self._progress = progress
        self._cancellations = cancellations
        self._policy = policy
        self._quality_attempts = quality_attempts

    async def plan_requested(self, request: PlanRequested) -> None:
        async with self._cancellations.watching(request.request_id) as cancelled:
            if cancelled.is_set():
                log.info("request %s was cancelled; not planning it", request.request_id)
                return
            generated = await self._drafts.get(request)
            if generated is None:
                await self._progress.announce(
                    PlanProgress(request_id=request.request_id, status="processing", stage="generating")
                )
                STAGE_SECONDS.labels("queued").observe(max(0.0, time.time() - request.occurred_at.timestamp()))
                started = time.monotonic()
                generated = await unless_cancelled(cancelled, self._generate(request))
                STAGE_SECONDS.labels("generating").observe(time.monotonic() - started)
                if generated is None:
                    await self._writer.abandon(request.request_id)
                    log.info("request %s cancelled while its plan was being written; dropped it", request.request_id)
                    return
        await self._publisher.publish(generated)
        distinct = distinct_by_key(generated.exercises)
        await asyncio.gather(
            *(
                self._publisher.publish(ExerciseProfileNeeded(request_id=request.request_id, exercise=ref))
                for ref in distinct
            )
        )
        await self._progress.announce(
            PlanProgress(
                request_id=request.request_id,
                status="processing",
                stage="generated",
                exercises_total=len(distinct),
            )
        )

    async def plan_cancelled(self, event: PlanCancelled) -> None:
        """Mark the request for every replica and stop its call at the provider, wherever it runs."""
        await self._cancellations.mark(event.request_id)
        await self._writer.abandon(event.request_id)

    async def _generate(self, request: PlanRequested) -> PlanGenerated:
        draft = await self._checked_draft(request)
        generated = PlanGenerated(
            prompt_version=self._writer.prompt_version,
            request_id=request.request_id,
            user_id=request.user_id,
            plan=draft.plan,
            exercises=exercise_refs(draft.plan),
            usage=draft.usage,
        )
        # Kept before publishing: if a publish fails, the redelivery publishes this, not a new call.
        await self._drafts.put(generated)
        return generated

    async def _checked_draft(self, request: PlanRequested) -> PlanDraft:
        """A plan that passes the quality checks, written again (a bounded number of times) while it fails."""
        usages: list[LlmUsage] = []
        problems: list[str] = []
        prompt = prompt_for(request, self._policy)
        for _ in range(self._quality_attempts):
            # The writer checks what it asked for against the same user text: one reading of the request.
            draft = await self._writer.write(request.request_id, prompt.instructions, prompt.user)
            usages.append(draft.usage)
            problems = plan_problems(draft.plan, profile=prompt.user)
            if not problems:
                usage = LlmUsage(
                    model=draft.usage.model,
                    prompt_tokens=sum(u.prompt_tokens for u in usages),
                    completion_tokens=sum(u.completion_tokens for u in usages),
                    calls=sum(u.calls for u in usages),
                )
                return PlanDraft(plan=draft.plan, usage=usage)
            log.warning("request %s: the plan fails its checks (%s)", request.request_id, "; ".join(problems))
            # Forget the call that wrote it (a background response would be re-attached to otherwise).
            await self._writer.abandon(request.request_id)
        raise GiveUp("plan_quality", "; ".join(problems)[:1000])
