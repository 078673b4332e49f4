"""The models the simulator serves, with each one's limits and service tiers as OpenAI publishes them.

``context_window`` is the most tokens a call may hold (prompt and reply together) and
``max_output_tokens`` the most it may generate. A request naming a model not here is a 404
``model_not_found``, as the API answers a model that does not exist or that the key may not use;
the ``models`` knob narrows the ones this simulated account may use, never widens them.

``flex`` and ``priority`` say which processing tiers besides the standard one a model offers.
Sources: OpenAI's pricing page (platform.openai.com/docs/pricing, its "Flex" and "Priority"
tables as of November 2025): Flex for gpt-5, gpt-5-mini, gpt-5-nano, o3 and o4-mini (the flex
processing guide: "Supported models are listed on the pricing page"); Priority for gpt-5,
gpt-5-mini, the gpt-4.1 family, gpt-4o (the 2024-08-06 and 2024-11-20 snapshots), gpt-4o-mini,
o3 and o4-mini, the list openai.com/api-priority-processing gives too. gpt-5-nano has no
Priority price there, so it has no Priority processing. Each dated snapshot takes its alias's tiers.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelLimits:
    context_window: int
    max_output_tokens: int
    # Reasoning models refuse chat's ``max_tokens`` and any ``temperature`` but the default.
    reasoning: bool = False
    # Whether ``service_tier: "flex"`` is served (else a 400) and ``"priority"`` honoured (else "default").
    flex: bool = False
    priority: bool = False


# platform.openai.com/docs/models/<id>: gpt-4o-mini and gpt-4o 128,000 / 16,384; the gpt-4.1
# family 1,047,576 / 32,768; the gpt-5 family 400,000 / 128,000; o3 and o4-mini 200,000 / 100,000.
_GPT_4O = ModelLimits(context_window=128_000, max_output_tokens=16_384, priority=True)
_GPT_41 = ModelLimits(context_window=1_047_576, max_output_tokens=32_768, priority=True)
_GPT_5 = ModelLimits(context_window=400_000, max_output_tokens=128_000, reasoning=True, flex=True, priority=True)
_GPT_5_NANO = ModelLimits(context_window=400_000, max_output_tokens=128_000, reasoning=True, flex=True)
_O_SERIES = ModelLimits(context_window=200_000, max_output_tokens=100_000, reasoning=True, flex=True, priority=True)

MODELS: dict[str, ModelLimits] = {
    "gpt-4o-mini": _GPT_4O,
    "gpt-4o-mini-2024-07-18": _GPT_4O,
    "gpt-4o": _GPT_4O,
    "gpt-4o-2024-08-06": _GPT_4O,
    "gpt-4o-2024-11-20": _GPT_4O,
    "gpt-4.1": _GPT_41,
    "gpt-4.1-2025-04-14": _GPT_41,
    "gpt-4.1-mini": _GPT_41,
    "gpt-4.1-mini-2025-04-14": _GPT_41,
    "gpt-4.1-nano": _GPT_41,
    "gpt-4.1-nano-2025-04-14": _GPT_41,
    "gpt-5": _GPT_5,
    "gpt-5-2025-08-07": _GPT_5,
    "gpt-5-mini": _GPT_5,
    "gpt-5-mini-2025-08-07": _GPT_5,
    "gpt-5-nano": _GPT_5_NANO,
    "gpt-5-nano-2025-08-07": _GPT_5_NANO,
    "o3": _O_SERIES,
    "o3-2025-04-16": _O_SERIES,
    "o4-mini": _O_SERIES,
    "o4-mini-2025-04-16": _O_SERIES,
}


def limits_of(model: str) -> ModelLimits | None:
    return MODELS.get(model)
