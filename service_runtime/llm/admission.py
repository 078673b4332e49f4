"""``StructuredCalls`` that wait for the provider's shared budget and choose each call's service tier.

Before a call, ``Admitted`` estimates what the provider will count for it (as the provider does:
the larger of the prompt's estimate and the output cap) and waits until the shared budget
(``service_runtime.llm.budget``) admits it; the message being handled keeps its lease meanwhile
(the consumer's heartbeats) and no delivery is spent. It then chooses the tier (``TierPolicy``) and
makes the call on it. A Flex call the provider refuses for capacity (429 ``resource_unavailable``,
not billed) or that has not answered within ``flex_seconds`` is stopped and made again at once on
Standard, so Flex saves money without costing a deadline.
"""

import asyncio
import functools
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import pydantic
from nats.js import JetStreamContext

from contracts.streams import LLM_BUDGETS
from service_runtime.buckets import Bucket
from service_runtime.llm.budget import Budgets, BudgetState, KvBudgets, Limits
from service_runtime.llm.client import LlmSettings
from service_runtime.llm.line import Line
from service_runtime.llm.port import Prompt, StructuredCalls, StructuredReply
from service_runtime.llm.prices import ServiceTier
from service_runtime.llm.terms import CallTerms, Lane, current_terms, on_tier
from service_runtime.metrics import (
    LLM_ADMISSION_WAIT_SECONDS,
    LLM_ADMITTED_TOKENS,
    LLM_BUDGET_REQUESTS,
    LLM_BUDGET_TOKENS,
    LLM_CALLS_WAITING,
)
from service_runtime.model_limits import limits_of, output_cap
from service_runtime.outcomes import RetryLater
from service_runtime.strict_schema import chat_response_format

__all__ = ["Admitted", "TierPolicy", "admitted", "estimated_tokens", "open_budgets"]

log = logging.getLogger(__name__)

ReplyT = TypeVar("ReplyT", bound=pydantic.BaseModel)


_CHARS_PER_TOKEN = 4
_TOKENS_PER_MESSAGE = 4
_TOKENS_PER_REPLY = 3


@functools.cache
def _schema_tokens(reply_type: type[pydantic.BaseModel]) -> int:
    """A structured output's schema is input too (the provider counts and caches it)."""
    schema = chat_response_format(reply_type)["json_schema"]["schema"]
    return math.ceil(len(json.dumps(schema, separators=(",", ":"))) / _CHARS_PER_TOKEN) + _TOKENS_PER_MESSAGE


def estimated_tokens(model: str, prompt: Prompt, reply_type: type[pydantic.BaseModel]) -> int:
    """What the provider counts against the budget for this call: the larger of the prompt's
    estimate (about four characters a token, a few per message) and the call's output cap."""
    texts = [text for _, text in prompt.messages()]
    prompt_tokens = (
        sum(math.ceil(len(t) / _CHARS_PER_TOKEN) + _TOKENS_PER_MESSAGE for t in texts)
        + _TOKENS_PER_REPLY
        + _schema_tokens(reply_type)
    )
    return max(prompt_tokens, output_cap(model, reply_type) or 0)


@dataclass(frozen=True)
class TierPolicy:
    """Which tier a call asks for: its lane's (``LLM_SERVICE_TIERS``), where the model offers it.
    What Flex may cost in time is bounded per call (``flex_seconds``, then Standard), not by the
    request's deadline."""

    by_lane: dict[Lane, ServiceTier] = field(default_factory=lambda: {"standard": "default", "priority": "default"})
    flex_seconds: float = 120.0

    def tier_for(self, model: str, terms: CallTerms) -> ServiceTier:
        wanted = self.by_lane.get(terms.lane, "default")
        limits = limits_of(model)
        if wanted == "flex":
            return "flex" if limits is not None and limits.flex else "default"
        if wanted == "priority":
            return "priority" if limits is not None and limits.priority else "default"
        return "default"


class Admitted:
    def __init__(
        self,
        calls: StructuredCalls,
        budgets: Budgets | None,
        limits: Limits | None,
        *,
        stage: str,
        policy: TierPolicy | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._calls = calls
        self._stage = stage
        self._policy = policy or TierPolicy()
        self._clock = clock
        self.model = calls.model
        self._line = Line(self.model, budgets, limits, clock) if budgets is not None and limits is not None else None
        if limits is not None:
            LLM_BUDGET_TOKENS.labels(self.model).set(limits.tokens_per_minute)
            LLM_BUDGET_REQUESTS.labels(self.model).set(limits.requests_per_minute)
        # Every lane's series there from the start, at zero; looked up here, not per call.
        self._lane_metrics = {
            lane: (
                LLM_CALLS_WAITING.labels(stage, self.model, lane),
                LLM_ADMISSION_WAIT_SECONDS.labels(stage, self.model, lane),
                LLM_ADMITTED_TOKENS.labels(stage, self.model, lane),
            )
            for lane in (("standard", "priority") if limits is not None else ())
        }

    async def call(self, key: str, prompt: Prompt, reply_type: type[ReplyT]) -> StructuredReply[ReplyT]:
        terms = current_terms()
        if self._line is not None:
            await self._turn(key, estimated_tokens(self.model, prompt, reply_type), terms)
        tier = self._policy.tier_for(self.model, terms)
        heard = self._line.heard if self._line is not None else None
        if tier != "flex":
            with on_tier(tier, on_limits=heard):
                return await self._calls.call(key, prompt, reply_type)
        try:
            async with asyncio.timeout(self._policy.flex_seconds):
                with on_tier("flex", on_limits=heard):
                    return await self._calls.call(key, prompt, reply_type)
        except RetryLater as exc:
            if exc.reason == "llm_timeout":  # no first token in time (LLM_FIRST_TOKEN_SECONDS): slow
                log.info("%s: Flex was too slow to start; calling on Standard", key)
                await self._calls.abandon(key)
            elif exc.reason == "llm_capacity_unavailable":
                log.info("%s: Flex has no capacity now; calling on Standard", key)
            else:
                raise
        except TimeoutError:
            log.info("%s: Flex took over %.0fs; calling on Standard", key, self._policy.flex_seconds)
            await self._calls.abandon(key)  # a background response must not be re-attached to
        with on_tier("default", on_limits=heard):
            return await self._calls.call(key, prompt, reply_type)

    async def forget(self, key: str) -> None:
        await self._calls.forget(key)

    async def abandon(self, key: str) -> None:
        await self._calls.abandon(key)

    async def _turn(self, key: str, need: int, terms: CallTerms) -> None:
        """Wait until the shared budget admits ``need`` tokens for this call."""
        assert self._line is not None
        waiting, wait_seconds, admitted = self._lane_metrics[terms.lane]
        started = self._clock()
        waiting.inc()
        try:
            await self._line.turn(key, need, terms)
        finally:
            waiting.dec()
        wait_seconds.observe(self._clock() - started)
        admitted.inc(need)


async def open_budgets(settings: LlmSettings, js: JetStreamContext, *, replicas: int = 1) -> Budgets | None:
    """The shared budgets, when ``LLM_RATE_LIMITS`` names any model (else None: nothing to share)."""
    if not settings.llm_rate_limits:
        return None
    return KvBudgets(await Bucket.open(js, LLM_BUDGETS, BudgetState, replicas=replicas))


def admitted(calls: StructuredCalls, settings: LlmSettings, budgets: Budgets | None, *, stage: str) -> Admitted:
    """``calls`` behind the shared budget of their model (when ``LLM_RATE_LIMITS`` names it) and the
    lanes' tiers (``LLM_SERVICE_TIERS``): how every service that calls the provider builds its calls."""
    configured = settings.llm_rate_limits.get(calls.model)
    policy = TierPolicy(
        by_lane={"standard": "default", "priority": "default", **settings.llm_service_tiers},
        flex_seconds=settings.llm_flex_seconds,
    )
    if configured is None or budgets is None:
        return Admitted(calls, None, None, stage=stage, policy=policy)
    limits = Limits(configured.tokens_per_minute, configured.requests_per_minute)
    return Admitted(calls, budgets, limits, stage=stage, policy=policy)
