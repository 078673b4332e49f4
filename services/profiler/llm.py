"""``ProfileWriter`` over the structured-call port: one short call per new exercise."""

from pathlib import Path

from contracts.plan import ExerciseProfile
from service_runtime.llm import Prompt, StructuredCalls, first_usable
from service_runtime.prompts import read_prompt
from services.profiler.profiles import ProfileDraft

PROFILE_PROMPT = read_prompt(Path(__file__).parent / "prompts", "profile-v1")
INSTRUCTIONS = PROFILE_PROMPT.text


def profile_prompt(exercise_name: str) -> Prompt:
    """What the model is asked for one exercise's profile, by a call or in a batch alike."""
    return Prompt((INSTRUCTIONS,), f"Exercise: {exercise_name}")


class LlmProfileWriter:
    def __init__(self, calls: StructuredCalls, *, tries: int) -> None:
        self._calls = calls
        self._tries = tries

    async def write(self, exercise_name: str) -> ProfileDraft:
        reply = await first_usable(
            self._calls,
            f"profile.{exercise_name}",
            profile_prompt(exercise_name),
            ExerciseProfile,
            tries=self._tries,
            # One bad profile would fail every plan waiting for the exercise; a profile costs
            # little, so an unusable one gets more deliveries (bounded by max_deliver).
            invalid_is_transient=True,
        )
        return ProfileDraft(profile=reply.parsed, usage=reply.usage)
