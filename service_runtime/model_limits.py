"""What each model can write, and the output cap every call sets from it and from its reply type.

Every call carries ``max_completion_tokens`` (Chat Completions) or ``max_output_tokens``
(Responses): without one a runaway reply bills up to the model's limit, and a cap above the
model's limit is refused with a 400 on every call. Figures are OpenAI's model pages (context
window / maximum output tokens).
"""

import re
from dataclasses import dataclass

import pydantic

__all__ = ["MODEL_LIMITS", "ModelLimits", "limits_of", "output_cap"]


@dataclass(frozen=True)
class ModelLimits:
    context_window: int
    max_output_tokens: int
    # The service tiers besides Standard the model is offered on (OpenAI's pricing page: Flex
    # for the gpt-5 family, o3 and o4-mini; Priority for all here but gpt-5-nano). Asking a model
    # for Flex it does not offer is a 400.
    flex: bool = False
    priority: bool = False


MODEL_LIMITS: dict[str, ModelLimits] = {
    "gpt-4o-mini": ModelLimits(128_000, 16_384, priority=True),
    "gpt-4o": ModelLimits(128_000, 16_384, priority=True),
    "gpt-4.1": ModelLimits(1_047_576, 32_768, priority=True),
    "gpt-4.1-mini": ModelLimits(1_047_576, 32_768, priority=True),
    "gpt-4.1-nano": ModelLimits(1_047_576, 32_768, priority=True),
    "gpt-5": ModelLimits(400_000, 128_000, flex=True, priority=True),
    "gpt-5-mini": ModelLimits(400_000, 128_000, flex=True, priority=True),
    "gpt-5-nano": ModelLimits(400_000, 128_000, flex=True),
    "o3": ModelLimits(200_000, 100_000, flex=True, priority=True),
    "o4-mini": ModelLimits(200_000, 100_000, flex=True, priority=True),
}

_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")  # gpt-4o-mini-2024-07-18 is gpt-4o-mini


def limits_of(model: str) -> ModelLimits | None:
    """The model's limits, a dated snapshot's included; None for a model we have no figures for."""
    return MODEL_LIMITS.get(_SNAPSHOT.sub("", model))


def output_cap(model: str, reply_type: type[pydantic.BaseModel]) -> int | None:
    """The output cap of one call: the reply type's own bound (``max_output_tokens`` on the model
    class, None = as much as the model writes), never above the model's limit. None when neither
    is known: a server we have no figures for keeps its own default rather than a guessed cap it
    might refuse."""
    own: int | None = getattr(reply_type, "max_output_tokens", None)
    limits = limits_of(model)
    if limits is None:
        return own
    return min(own, limits.max_output_tokens) if own is not None else limits.max_output_tokens
