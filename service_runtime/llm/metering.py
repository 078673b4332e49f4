"""What each LLM call did and cost: metrics (calls by outcome, latency, tokens, dollars) and the
cost ledger (one ``LlmCallRecorded`` record per paid call, stored by the persister).

A record is published as an ``llm.call.recorded`` event as soon as the provider answered, unless
the call runs inside ``collecting_calls()`` and its reply was usable (outcome ``ok``): then the
record goes to the collecting list, and whoever keeps the reply keeps the record with it and
sends it on with its result (the planner: with each finished part, then inside ``plan.generated``;
or, when the plan is not made, as ``llm.call.recorded`` events after all). Either way it is stored
once, by its ``call_id``.

Prices are per model and service tier (``service_runtime.llm.prices``, configurable with
``LLM_PRICES``); a call is billed at the tier that served it, its cached input tokens at the cached
price; a model missing from the table is metered at zero cost and logged once.
"""

import asyncio
import logging
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from prometheus_client.metrics import MetricWrapperBase

from contracts.events import LlmCallRecorded
from service_runtime.bus import EventPublisher
from service_runtime.ids import uuid7
from service_runtime.llm.errors import METRIC_LABELS, classify
from service_runtime.llm.prices import Price, RawPrices, prices_from
from service_runtime.logs import current_request_id, reason
from service_runtime.metrics import LLM_CALL_SECONDS, LLM_CALLS, LLM_COST_USD, LLM_TOKENS, llm_at_zero

__all__ = ["LlmMeter", "carry_calls", "collecting_calls", "publish_calls"]

log = logging.getLogger(__name__)

_COLLECTED: ContextVar[list[LlmCallRecorded] | None] = ContextVar("collected_llm_calls", default=None)


@contextmanager
def collecting_calls() -> Iterator[list[LlmCallRecorded]]:
    """Within the block (and the tasks it starts), the records of calls answered with a usable
    reply are appended to the yielded list instead of being published: the caller owns them.
    Blocks nest: when an inner one ends, however it ends, its records join the outer one's."""
    outer = _COLLECTED.get()
    calls: list[LlmCallRecorded] = []
    token = _COLLECTED.set(calls)
    try:
        yield calls
    finally:
        _COLLECTED.reset(token)
        if outer is not None:
            outer.extend(calls)


def carry_calls(calls: Iterable[LlmCallRecorded]) -> None:
    """Records kept from earlier (a part finished by an earlier delivery) join the block collecting now."""
    collected = _COLLECTED.get()
    if collected is not None:
        collected.extend(calls)


async def publish_calls(ledger: EventPublisher, calls: Iterable[LlmCallRecorded]) -> None:
    """Publish records that will not travel with a result after all (best effort, like ``record``)."""
    unique = {call.call_id: call for call in calls}
    results = await asyncio.gather(*(ledger.publish(call) for call in unique.values()), return_exceptions=True)
    for call, result in zip(unique.values(), results, strict=True):
        if isinstance(result, BaseException):
            log.error(
                "ledger: could not record call %s of request %s: %s", call.call_id, call.request_id, reason(result)
            )


_FREE = Price(0.0, 0.0, 0.0)


Stage = Literal["planner", "profiler"]


class LlmMeter:
    """Records the LLM calls of one stage: metrics, and with ``ledger`` one ledger event per paid call."""

    def __init__(
        self,
        stage: Stage,
        prices: RawPrices | None = None,
        ledger: EventPublisher | None = None,
        *,
        model: str | None = None,
    ) -> None:
        self._stage: Stage = stage
        self._prices = prices_from(prices)
        self._ledger = ledger
        self._unpriced: set[str] = set()
        # Looked up once each: a price-table name per reported model, and a labelled metric child
        # per label set (prometheus_client's ``labels`` costs ~8 µs, six of them per call). Both
        # bounded: the names by ``_priced_name``, the labels by stage, model, outcome and tier.
        self._names: dict[str, str] = {}
        self._children: dict[tuple[object, ...], Any] = {}
        if model is not None:
            llm_at_zero(stage, self._priced_name(model), METRIC_LABELS)

    async def record(
        self,
        model: str,
        outcome: str,
        seconds: float,
        *,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        cached_tokens: int = 0,
        service_tier: str = "default",
        call_id: uuid.UUID | None = None,
    ) -> None:
        """One call the provider answered (``outcome``: ``ok``, ``invalid_reply``, ...), paid or not,
        at the ``service_tier`` that served it (the reply says which). ``call_id`` names a call that
        more than one process may see answered (a background response, re-attached to after a
        crash): each records it under that id, stored once."""
        self._count(model, outcome, seconds)
        if not (prompt_tokens or completion_tokens):
            return
        priced = self._priced_name(model)
        tier = service_tier if service_tier in ("flex", "priority", "batch") else "default"
        cost = self.cost_usd(model, prompt_tokens, completion_tokens, cached_tokens=cached_tokens, tier=tier)
        self._child(LLM_TOKENS, priced, "prompt").inc(prompt_tokens)
        self._child(LLM_TOKENS, priced, "cached").inc(cached_tokens)
        self._child(LLM_TOKENS, priced, "completion").inc(completion_tokens)
        self._child(LLM_COST_USD, priced, tier).inc(cost)
        bound = current_request_id()
        if self._ledger is None or bound is None:
            return
        request_id = uuid.UUID(bound)
        call = LlmCallRecorded(
            request_id=request_id,
            call_id=call_id or uuid7(),
            stage=self._stage,
            model=model,
            outcome=outcome,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cached_tokens=cached_tokens,
            service_tier=tier,
            seconds=seconds,
            cost_usd=cost,
            occurred_at=datetime.now(UTC) - timedelta(seconds=seconds),
        )
        collected = _COLLECTED.get()
        if collected is not None and outcome == "ok":
            collected.append(call)
            return
        try:
            await self._ledger.publish(call)
        except Exception as exc:
            # The call is paid and its result may be good: losing a ledger row must not lose the work.
            log.error("ledger: could not record a %s call for request %s: %s", self._stage, request_id, reason(exc))

    def failed(self, model: str, exc: BaseException, seconds: float) -> None:
        """A call that got no answer (nothing billed)."""
        self._count(model, classify(exc).label, seconds)

    def _count(self, model: str, outcome: str, seconds: float) -> None:
        priced = self._priced_name(model)
        self._child(LLM_CALLS, priced, outcome).inc()
        self._child(LLM_CALL_SECONDS, priced).observe(seconds)

    def _child(self, metric: MetricWrapperBase, *labels: str) -> Any:
        """``metric``'s child for this stage and ``labels``."""
        key = (metric, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(self._stage, *labels)
        return child

    def cost_usd(
        self, model: str, prompt_tokens: int, completion_tokens: int, *, cached_tokens: int = 0, tier: str = "default"
    ) -> float:
        tiers = self._prices.get(self._priced_name(model), {})
        price = tiers.get(tier) or tiers.get("default") or _FREE
        return price.cost_usd(prompt_tokens, completion_tokens, cached_tokens)

    def _priced_name(self, model: str) -> str:
        """The price-table entry a reported model name belongs to (providers append dates:
        ``gpt-4o-mini-2024-07-18``); the label stays bounded either way."""
        name = self._names.get(model)
        if name is None:
            name = self._find_priced_name(model)
            if len(self._names) < 100:
                self._names[model] = name
        return name

    def _find_priced_name(self, model: str) -> str:
        if model in self._prices:
            return model
        for name in sorted(self._prices, key=len, reverse=True):
            if model.startswith(f"{name}-"):
                return name
        if model not in self._unpriced:
            self._unpriced.add(model)
            log.warning("no price for model %r: its calls are metered at $0 (set LLM_PRICES)", model)
        return "other" if len(self._unpriced) > 20 else model
