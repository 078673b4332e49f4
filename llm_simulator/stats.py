"""Counters that let tests and operators see what the simulator served (``GET /_sim/stats``)."""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


@dataclass
class SimulatorStats:
    """What the simulator has seen and served since start or the last reset.

    A *completion* is a reply delivered in full, intact, with finish_reason "stop". Replies a
    fault spoiled (malformed, truncated) count under ``faults_by_kind`` instead; replies the
    client walked away from count as ``abandoned_total``. Tokens count everything delivered.
    Responses API replies count in the same completion counters (a plan is a plan, however it
    was bought); ``responses_created_total`` counts accepted ``POST /v1/responses`` calls and
    ``responses_cancelled_total`` the background responses cancelled before they finished.
    ``billed_by_schema`` counts every generation a provider would charge for: replies generated
    to their end (intact or spoiled), abandoned and cancelled ones (not a response cancelled while
    still queued: nothing was generated); errors answered before any
    generation (429, 500, a background response that failed) are free. ``billed_forced_by_schema``
    is the part of it whose fault a directive forced.

    ``served_by_service_tier`` counts the requests accepted for generation by the tier that served
    them; ``rate_limited_by_type`` the 429s of the rate limits (``requests`` or ``tokens``, the
    error's ``type``), ``flex_unavailable_total`` the flex requests refused for want of capacity
    (neither is billed nor metered). ``cached_tokens_total`` is the part of ``prompt_tokens_total``
    served from the prompt cache. ``batches_created_total`` counts accepted ``POST /v1/batches``
    calls and ``batch_requests_total`` the requests of batches that were run (answered or not:
    each one's line is in the output or the error file); those the model answered also count in
    ``requests_total`` and the completion, token and billing counters.
    """

    requests_total: int = 0
    completions_total: int = 0
    completions_by_schema: Counter[str] = field(default_factory=Counter)
    profiles_by_exercise: Counter[str] = field(default_factory=Counter)
    prompt_tokens_total: int = 0
    completion_tokens_total: int = 0
    faults_by_kind: Counter[str] = field(default_factory=Counter)
    abandoned_total: int = 0
    responses_created_total: int = 0
    responses_cancelled_total: int = 0
    billed_by_schema: Counter[str] = field(default_factory=Counter)
    billed_forced_by_schema: Counter[str] = field(default_factory=Counter)
    cached_tokens_total: int = 0
    served_by_service_tier: Counter[str] = field(default_factory=Counter)
    rate_limited_by_type: Counter[str] = field(default_factory=Counter)
    flex_unavailable_total: int = 0
    batches_created_total: int = 0
    batch_requests_total: int = 0

    def snapshot(self) -> dict[str, Any]:
        """The counters as JSON-ready data."""
        return {
            "requests_total": self.requests_total,
            "completions_total": self.completions_total,
            "completions_by_schema": dict(self.completions_by_schema),
            "profiles_by_exercise": dict(self.profiles_by_exercise),
            "prompt_tokens_total": self.prompt_tokens_total,
            "completion_tokens_total": self.completion_tokens_total,
            "faults_by_kind": dict(self.faults_by_kind),
            "abandoned_total": self.abandoned_total,
            "responses_created_total": self.responses_created_total,
            "responses_cancelled_total": self.responses_cancelled_total,
            "billed_by_schema": dict(self.billed_by_schema),
            "billed_forced_by_schema": dict(self.billed_forced_by_schema),
            "cached_tokens_total": self.cached_tokens_total,
            "served_by_service_tier": dict(self.served_by_service_tier),
            "rate_limited_by_type": dict(self.rate_limited_by_type),
            "flex_unavailable_total": self.flex_unavailable_total,
            "batches_created_total": self.batches_created_total,
            "batch_requests_total": self.batch_requests_total,
        }
