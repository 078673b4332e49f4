"""Two replicas share the provider's budget through a real JetStream bucket, against the simulator
with the provider's request limit switched on: offered more than the limit, they get no 429 (their
calls wait their turn instead), and the same load without the shared budget does get 429s."""

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

import httpx
import openai
import pytest
from nats.aio.client import Client
from pydantic import BaseModel

from contracts.events import LlmCallRecorded
from contracts.streams import LLM_BUDGETS
from llm_simulator import SimulatorConfig
from service_runtime.buckets import Bucket
from service_runtime.llm.admission import Admitted, TierPolicy
from service_runtime.llm.budget import BudgetState, KvBudgets, Limits
from service_runtime.llm.chat import ChatCompletions
from service_runtime.llm.metering import LlmMeter
from service_runtime.llm.port import Prompt
from service_runtime.llm.terms import calling_for
from service_runtime.logs import bind_request_id
from service_runtime.outcomes import RetryLater
from tests.simulator_server import reset_simulator, serving_simulator, simulator_stats

pytestmark = pytest.mark.integration

ACCOUNT_RPM = 120  # the provider's: 120 requests at once, then two a second
KNOBS: dict[str, Any] = {"tokens_per_second": 0, "first_token_delay_seconds": 0, "requests_per_minute": ACCOUNT_RPM}
CALLS = ACCOUNT_RPM + 2  # more than the budget holds: the last ones wait their turn


class Answer(BaseModel):
    max_output_tokens: ClassVar[int] = 16
    answer: str


@pytest.fixture(scope="module")
def limited_simulator() -> Iterator[str]:
    with serving_simulator(SimulatorConfig(**KNOBS)) as url:
        yield url


async def _burst(url: str, calls_of: list[Any]) -> list[BaseException | None]:
    async def one(n: int) -> BaseException | None:
        calls = calls_of[n % len(calls_of)]
        with calling_for(f"user-{n % 5}", "priority" if n % 16 == 0 else "standard"):
            try:
                await calls.call(f"k{n}", Prompt(("Answer briefly.",), f"question {n}"), Answer)
            except RetryLater as exc:
                return exc
        return None

    return await asyncio.gather(*(one(n) for n in range(CALLS)))


async def test_replicas_sharing_the_budget_get_no_429_where_unshared_calls_do(
    nc: Client, limited_simulator: str
) -> None:
    async with (
        httpx.AsyncClient(base_url=limited_simulator) as admin,
        openai.AsyncOpenAI(base_url=f"{limited_simulator}/v1", api_key="sim", max_retries=0) as llm,
    ):
        plain = ChatCompletions(llm, model="gpt-4o-mini", deadline_seconds=30, stream=False)

        # Unshared: each call goes as soon as it is made, and the provider refuses what is over its limit.
        await reset_simulator(admin, KNOBS)
        outcomes = await _burst(limited_simulator, [plain])
        refused = [o for o in outcomes if isinstance(o, RetryLater)]
        assert refused, "the load did not exceed the provider's limit: the test proves nothing"
        assert {o.reason for o in refused} == {"llm_rate_limited"}
        assert (await simulator_stats(admin))["rate_limited_by_type"].get("requests", 0) == len(refused)

        # Shared by two replicas, each with its own client of the same bucket, a little under the account's.
        await reset_simulator(admin, KNOBS)
        bucket = await Bucket.open(nc.jetstream(), LLM_BUDGETS, BudgetState)
        await bucket.delete("gpt-4o-mini")
        limits = Limits(tokens_per_minute=1_000_000, requests_per_minute=ACCOUNT_RPM - 6)
        replicas = [Admitted(plain, KvBudgets(bucket), limits, stage=f"replica{i}") for i in range(2)]
        outcomes = await _burst(limited_simulator, replicas)
        assert [o for o in outcomes if o is not None] == []
        stats = await simulator_stats(admin)
        assert sum(stats["rate_limited_by_type"].values()) == 0
        assert stats["requests_total"] == CALLS
        left = await bucket.get("gpt-4o-mini")
        assert left is not None
        assert left.waiting == {}, "every call that waited left the line"
        assert set(left.use) == {f"user-{n}" for n in range(5)}
        await bucket.delete("gpt-4o-mini")


async def test_the_providers_own_lower_limit_is_learnt_into_the_shared_budget(
    nc: Client, limited_simulator: str
) -> None:
    async with (
        httpx.AsyncClient(base_url=limited_simulator) as admin,
        openai.AsyncOpenAI(base_url=f"{limited_simulator}/v1", api_key="sim", max_retries=0) as llm,
    ):
        await reset_simulator(admin, {**KNOBS, "tokens_per_minute": 50_000})
        bucket = await Bucket.open(nc.jetstream(), LLM_BUDGETS, BudgetState)
        await bucket.delete("gpt-4o-mini")
        streamed = ChatCompletions(llm, model="gpt-4o-mini", deadline_seconds=30, stream=True)
        # Configured above the account's real limit: the provider's headers say otherwise.
        calls = Admitted(streamed, KvBudgets(bucket), Limits(1_000_000, 10_000), stage="test")
        with calling_for("user-1"):
            await calls.call("k", Prompt(("Answer briefly.",), "question"), Answer)
        for _ in range(50):
            entry = await bucket.get("gpt-4o-mini")
            if entry is not None and entry.tokens_per_minute == 50_000:
                break
            await asyncio.sleep(0.05)
        assert entry is not None
        assert entry.tokens_per_minute == 50_000
        assert entry.tokens < 50_000
        await bucket.delete("gpt-4o-mini")


async def test_a_flex_call_without_capacity_is_served_on_standard_and_billed_there(limited_simulator: str) -> None:
    async with (
        httpx.AsyncClient(base_url=limited_simulator) as admin,
        openai.AsyncOpenAI(base_url=f"{limited_simulator}/v1", api_key="sim", max_retries=0) as llm,
    ):
        ledger = _Ledger()
        meter = LlmMeter("planner", ledger=ledger, model="gpt-5-mini")
        calls = Admitted(
            ChatCompletions(llm, model="gpt-5-mini", deadline_seconds=30, stream=True, meter=meter),
            None,
            None,
            stage="test",
            policy=TierPolicy(by_lane={"standard": "flex"}),
        )
        bind_request_id(uuid.uuid4())
        for unavailable, served in ((0.0, "flex"), (1.0, "default")):
            await reset_simulator(admin, {**KNOBS, "p_flex_unavailable": unavailable})
            with calling_for("user-1"):
                await calls.call(f"k-{served}", Prompt(("Answer briefly.",), "question"), Answer)
            stats = await simulator_stats(admin)
            assert stats["flex_unavailable_total"] == (1 if unavailable else 0)
            assert ledger.calls[-1].service_tier == served
        flex, standard = ledger.calls
        assert flex.cost_usd < standard.cost_usd  # the same call, half the price on Flex


class _Ledger:
    def __init__(self) -> None:
        self.calls: list[LlmCallRecorded] = []

    async def publish(self, event: LlmCallRecorded) -> None:
        self.calls.append(event)
