"""Service tiers: which processing a request gets, and how fast it goes there.

``service_tier`` (both APIs) asks for a tier; the answer's ``service_tier`` is the one used
(OpenAI's description of the parameter: "the response body will include the service_tier value
based on the processing mode actually used to serve the request"):

- ``auto`` (the default), ``default``: ``default``. ``scale``: ``default`` too, as this simulated
  account has no Scale Tier units.
- ``priority`` and ``fast`` (the same request, "The response will show service_tier=priority
  regardless"): ``priority`` on a model with Priority processing, else ``default``; also ``default``
  for a prompt estimated above 128K tokens, which Priority excludes ("excludes long context":
  requests estimated at >128K prompt tokens, openai.com/api-priority-processing).
- ``flex``: ``flex`` on a model with Flex processing; other models refuse it (``admission``).

Priority's ramp-rate downgrade (1M+ TPM growing >50% in 15 minutes) is not modelled.
"""

from llm_simulator.config import SimulatorConfig
from llm_simulator.model_table import ModelLimits
from llm_simulator.pacing import Pace

PRIORITY_LONG_CONTEXT_TOKENS = 128_000


def tier_used(requested: str | None, model: ModelLimits, prompt_tokens: int) -> str:
    """The tier that serves a request asking for ``requested`` (a flex request reaches here only for
    a model that offers Flex)."""
    if requested == "flex" and model.flex:
        return "flex"
    if requested in ("priority", "fast") and model.priority and prompt_tokens <= PRIORITY_LONG_CONTEXT_TOKENS:
        return "priority"
    return "default"


def refuses_flex(requested: str | None, model: ModelLimits) -> bool:
    """Whether asking for ``requested`` is a 400 on this model: Flex where the model has none."""
    return requested == "flex" and not model.flex


def pace_for(tier: str, config: SimulatorConfig) -> Pace:
    """The configured pace, sped up or slowed down for the tier: the token rate times the tier's
    factor, the first-token delay divided by it."""
    factor = {"flex": config.flex_speed_factor, "priority": config.priority_speed_factor}.get(tier, 1.0)
    return Pace(
        config.tokens_per_second * factor, config.first_token_delay_seconds / factor, config.stream_chunk_tokens
    )
