"""The OpenAI adapter of ``ProfileWriter``: one short structured-output call per new exercise."""

from pathlib import Path

import openai

from contracts.plan import ExerciseProfile
from service_runtime.llm import structured_completion
from service_runtime.metering import LlmMeter
from service_runtime.prompts import read_prompt
from services.profiler.profiles import ProfileDraft

PROFILE_PROMPT = read_prompt(Path(__file__).parent / "prompts", "profile-v1")
INSTRUCTIONS = PROFILE_PROMPT.text


class OpenAIProfileWriter:
    def __init__(
        self,
        client: openai.AsyncOpenAI,
        *,
        model: str,
        deadline_seconds: float,
        attempts: int,
        meter: LlmMeter | None = None,
    ) -> None:
        self._client = client
        self._meter = meter
        self._model = model
        self._deadline = deadline_seconds
        self._attempts = attempts

    async def write(self, exercise_name: str) -> ProfileDraft:
        reply = await structured_completion(
            self._client,
            model=self._model,
            messages=[
                {"role": "system", "content": INSTRUCTIONS},
                {"role": "user", "content": f"Exercise: {exercise_name}"},
            ],
            reply_type=ExerciseProfile,
            deadline_seconds=self._deadline,
            attempts=self._attempts,
            stream=False,
            # One bad profile would fail every plan waiting for the exercise; a profile costs
            # little, so an invalid one gets more deliveries (bounded by max_deliver).
            invalid_is_transient=True,
            meter=self._meter,
        )
        return ProfileDraft(profile=reply.parsed, usage=reply.usage)
