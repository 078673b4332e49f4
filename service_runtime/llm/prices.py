"""What a call costs: per model and service tier, USD per million input, cached input and output tokens.

OpenAI bills a call at the tier that served it (the reply's ``service_tier``): ``default``
(Standard), ``flex`` (Batch prices, slower, may be refused), ``priority`` (faster, dearer). Input
tokens the provider served from its prompt cache (``cached_tokens``, part of the input count) are
billed at the cached-input price. The table is OpenAI's pricing page when written; prices change
and differ by provider, so ``LLM_PRICES`` replaces it: ``{"model": [input, output]}`` (cached input
at the input price, every tier alike) or ``{"model": {"default": [input, cached, output], "flex":
[...]}}``. A model missing from the table is metered at zero (logged once by the meter); a tier
missing for a priced model is billed at its Standard price.
"""

from dataclasses import dataclass
from typing import Literal

__all__ = ["DEFAULT_PRICES", "Billing", "Price", "PriceTable", "ServiceTier", "prices_from"]

ServiceTier = Literal["default", "flex", "priority"]
# What the ledger says served a call: a tier, or the Batch API (half the Standard price, within 24 h).
Billing = Literal["default", "flex", "priority", "batch"]


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    cached_input: float
    output: float

    def cost_usd(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        cached = min(cached_tokens, prompt_tokens)
        return (
            (prompt_tokens - cached) * self.input + cached * self.cached_input + completion_tokens * self.output
        ) / 1_000_000


PriceTable = dict[str, dict[str, Price]]

# openai.com/api/pricing (Standard, Flex, Priority): input, cached input, output per 1M tokens.
DEFAULT_PRICES: PriceTable = {
    "gpt-4o-mini": {"default": Price(0.15, 0.075, 0.60), "priority": Price(0.25, 0.125, 1.00)},
    "gpt-4o": {"default": Price(2.50, 1.25, 10.00), "priority": Price(4.25, 2.125, 17.00)},
    "gpt-4.1": {"default": Price(2.00, 0.50, 8.00), "priority": Price(3.50, 0.875, 14.00)},
    "gpt-4.1-mini": {"default": Price(0.40, 0.10, 1.60), "priority": Price(0.70, 0.175, 2.80)},
    "gpt-4.1-nano": {"default": Price(0.10, 0.025, 0.40), "priority": Price(0.20, 0.05, 0.80)},
    "gpt-5": {
        "default": Price(1.25, 0.125, 10.00),
        "flex": Price(0.625, 0.0625, 5.00),
        "priority": Price(2.50, 0.25, 20.00),
    },
    "gpt-5-mini": {
        "default": Price(0.25, 0.025, 2.00),
        "flex": Price(0.125, 0.0125, 1.00),
        "priority": Price(0.45, 0.045, 3.60),
    },
    "gpt-5-nano": {"default": Price(0.05, 0.005, 0.40), "flex": Price(0.025, 0.0025, 0.20)},
    "o3": {"default": Price(2.00, 0.50, 8.00), "flex": Price(1.00, 0.25, 4.00), "priority": Price(3.50, 0.875, 14.00)},
    "o4-mini": {
        "default": Price(1.10, 0.275, 4.40),
        "flex": Price(0.55, 0.1375, 2.20),
        "priority": Price(2.00, 0.50, 8.00),
    },
}

# What LLM_PRICES may hold per model: [input, output], or per tier [input, cached input, output].
RawPrices = dict[str, tuple[float, float] | dict[str, tuple[float, float, float]]]


def _with_batch(table: PriceTable) -> PriceTable:
    """Batch API prices where the table has none: half of Standard, cached input included (OpenAI's
    Batch discount on every model it batches)."""
    out: PriceTable = {}
    for model, tiers in table.items():
        standard = tiers.get("default")
        half = Price(standard.input / 2, standard.cached_input / 2, standard.output / 2) if standard else None
        out[model] = {**({"batch": half} if half else {}), **tiers}
    return out


def prices_from(raw: RawPrices | None) -> PriceTable:
    """The price table ``LLM_PRICES`` describes (unset: ``DEFAULT_PRICES``), with Batch prices."""
    if raw is None:
        return _with_batch(DEFAULT_PRICES)
    table: PriceTable = {}
    for model, entry in raw.items():
        if isinstance(entry, dict):
            table[model] = {tier: Price(*figures) for tier, figures in entry.items()}
        else:
            prompt, completion = entry
            table[model] = {"default": Price(prompt, prompt, completion)}
    return _with_batch(table)
