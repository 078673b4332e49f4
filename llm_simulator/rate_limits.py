"""Rate limits per model, metered as OpenAI meters them (the rate-limits guide).

Each model has its own budget of requests and of tokens per minute. A budget is a bucket that
refills continuously at limit/60 per second up to the limit, not a counter reset each minute: the
``x-ratelimit-reset-*`` headers are the time until the bucket is full again. A request counts one
request and, for tokens, "the maximum of ``max_tokens`` and the estimated number of tokens based on
the character count of your request" (the guide's words): its prompt estimate or its output cap,
whichever is larger. A request that does not fit is a 429 and takes nothing from the budget.

A limit of 0 means not limited: the request never waits, and the headers report generous figures
(the limits OpenAI's own headers show for a high tier, 30,000 RPM and 150,000,000 TPM) metered
the same way, so clients that read them see plausible numbers.
"""

import math
from dataclasses import dataclass

from llm_simulator import refusals
from llm_simulator.protocol import ApiError

UNLIMITED_REQUESTS_PER_MINUTE = 30_000
UNLIMITED_TOKENS_PER_MINUTE = 150_000_000


@dataclass
class Bucket:
    """One budget: ``available`` units now, refilling at ``limit / 60`` per second up to ``limit``."""

    limit: int
    available: float
    stamp: float

    def refill(self, now: float) -> None:
        if now > self.stamp:
            self.available = min(float(self.limit), self.available + (now - self.stamp) * self.limit / 60)
            self.stamp = now

    def wait_for(self, amount: float) -> float:
        """Seconds until ``amount`` fits (0 if it fits now)."""
        missing = amount - self.available
        return max(0.0, missing * 60 / self.limit)

    def until_full(self) -> float:
        return max(0.0, (self.limit - self.available) * 60 / self.limit)

    @property
    def used(self) -> int:
        return max(0, min(self.limit, math.ceil(self.limit - self.available)))

    @property
    def remaining(self) -> int:
        return max(0, math.floor(self.available))


@dataclass
class _Budget:
    requests: Bucket
    tokens: Bucket


class RateLimits:
    """Every model's budgets under one pair of limits (0 = not limited)."""

    def __init__(self, requests_per_minute: int, tokens_per_minute: int) -> None:
        self.requests_per_minute = requests_per_minute
        self.tokens_per_minute = tokens_per_minute
        self._budgets: dict[str, _Budget] = {}

    def refusal(self, model: str, tokens: int, now: float) -> ApiError | None:
        """The 429 for a request of ``tokens`` that does not fit ``model``'s budget now, if it does not."""
        budget = self._budget(model, now)
        if self.tokens_per_minute and tokens > self.tokens_per_minute:
            return refusals.request_too_large(model, self.tokens_per_minute, tokens, self.headers(model, now))
        wait_requests = budget.requests.wait_for(1) if self.requests_per_minute else 0.0
        wait_tokens = budget.tokens.wait_for(tokens) if self.tokens_per_minute else 0.0
        if wait_requests <= 0 and wait_tokens <= 0:
            return None
        # The limit that holds the request back longest is the one it is told about.
        kind, bucket, requested, wait = (
            ("tokens", budget.tokens, tokens, wait_tokens)
            if wait_tokens > wait_requests
            else ("requests", budget.requests, 1, wait_requests)
        )
        headers = {**self.headers(model, now), **retry_after(wait)}
        return refusals.rate_limit_reached(
            model,
            kind,
            limit=bucket.limit,
            used=bucket.used,
            requested=requested,
            wait=duration_text(wait),
            headers=headers,
        )

    def take(self, model: str, tokens: int, now: float) -> None:
        """Meter one admitted request of ``tokens``."""
        budget = self._budget(model, now)
        budget.requests.available = max(0.0, budget.requests.available - 1)
        budget.tokens.available = max(0.0, budget.tokens.available - tokens)

    def headers(self, model: str | None, now: float) -> dict[str, str]:
        """The ``x-ratelimit-*`` headers for ``model`` as its budget stands (a fresh budget for None)."""
        budget = self._budget(model, now) if model is not None else self._fresh(now)
        return {
            "x-ratelimit-limit-requests": str(budget.requests.limit),
            "x-ratelimit-limit-tokens": str(budget.tokens.limit),
            "x-ratelimit-remaining-requests": str(budget.requests.remaining),
            "x-ratelimit-remaining-tokens": str(budget.tokens.remaining),
            "x-ratelimit-reset-requests": duration_text(budget.requests.until_full()),
            "x-ratelimit-reset-tokens": duration_text(budget.tokens.until_full()),
        }

    def _budget(self, model: str, now: float) -> _Budget:
        budget = self._budgets.get(model)
        if budget is None:
            budget = self._budgets[model] = self._fresh(now)
        budget.requests.refill(now)
        budget.tokens.refill(now)
        return budget

    def _fresh(self, now: float) -> _Budget:
        requests = self.requests_per_minute or UNLIMITED_REQUESTS_PER_MINUTE
        tokens = self.tokens_per_minute or UNLIMITED_TOKENS_PER_MINUTE
        return _Budget(Bucket(requests, float(requests), now), Bucket(tokens, float(tokens), now))


def retry_after(wait: float) -> dict[str, str]:
    """``retry-after`` in whole seconds (HTTP's rule, rounded up) and ``retry-after-ms`` exactly."""
    return {"retry-after": str(max(1, math.ceil(wait))), "retry-after-ms": str(max(1, math.ceil(wait * 1000)))}


def duration_text(seconds: float) -> str:
    """A duration as the API writes it (Go's style, to the millisecond): ``0s``, ``120ms``, ``1.2s``,
    ``6m0s``, ``1h2m3.5s``. Rounded up, so a client that waits that long finds room."""
    millis = math.ceil(round(seconds * 1000, 6)) if seconds > 0 else 0
    if millis == 0:
        return "0s"
    if millis < 1000:
        return f"{millis}ms"
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
