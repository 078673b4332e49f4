"""The portable OpenAI adapter of ``PlanWriter``: one streamed structured-output chat call per plan.

Works with any OpenAI-compatible server. A call cut short (crash, redelivery) cannot be resumed;
see ``background.py`` for the mode that can.
"""

import uuid

import openai
from openai.types.chat import ChatCompletionMessageParam

from contracts.plan import WorkoutPlan
from service_runtime.llm import structured_completion
from service_runtime.metering import LlmMeter
from services.planner.planning import PLAN_PROMPT, PlanDraft


class OpenAIPlanWriter:
    prompt_version = PLAN_PROMPT.version

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        model: str,
        deadline_seconds: float,
        attempts: int,
        stream: bool,
        meter: LlmMeter | None = None,
    ) -> None:
        self._client = client
        self._meter = meter
        self._model = model
        self._deadline = deadline_seconds
        self._attempts = attempts
        self._stream = stream

    async def write(self, request_id: uuid.UUID, instructions: list[str], user_profile: str) -> PlanDraft:
        messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": text} for text in instructions]
        messages.append({"role": "user", "content": user_profile})
        reply = await structured_completion(
            self._client,
            model=self._model,
            messages=messages,
            reply_type=WorkoutPlan,
            deadline_seconds=self._deadline,
            attempts=self._attempts,
            stream=self._stream,
            meter=self._meter,
        )
        return PlanDraft(plan=reply.parsed, usage=reply.usage)

    async def abandon(self, request_id: uuid.UUID) -> None:
        """Nothing to do: a chat call lives only in its connection, which stopping the write closed."""
