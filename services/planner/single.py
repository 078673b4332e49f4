"""The single-call strategy: one call writes the whole plan, checked as a whole.

Over streamed chat that call is minutes of tokens on one connection; over background responses a
redelivery re-attaches to it (its key is the request id). Paid calls per delivery: at most
``tries`` (``PLANNER_REPLY_ATTEMPTS``), whether the replies were unusable or failed their checks.
"""

import uuid

from contracts.plan import WorkoutPlan
from service_runtime.llm import StructuredCalls, first_usable
from services.planner.planning import PLAN_PROMPT, CheckedPlan, PlanPrompt
from services.planner.quality import plan_problems

__all__ = ["SingleCall"]


class SingleCall:
    prompt_version = PLAN_PROMPT.version

    def __init__(self, calls: StructuredCalls, *, tries: int) -> None:
        self._calls = calls
        self._tries = tries

    async def write(self, request_id: uuid.UUID, prompt: PlanPrompt) -> CheckedPlan:
        reply = await first_usable(
            self._calls,
            str(request_id),
            prompt.with_instructions(),
            WorkoutPlan,
            tries=self._tries,
            problems_of=lambda plan: plan_problems(plan, profile=prompt.user),
            quality_reason="plan_quality",
        )
        return CheckedPlan(reply.parsed, reply.usage, prompt_version=self.prompt_version)

    async def abandon(self, request_id: uuid.UUID) -> None:
        await self._calls.abandon(str(request_id))
