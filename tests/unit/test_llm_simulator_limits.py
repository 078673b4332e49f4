"""The simulator's rate limits and service tiers, driven by the real ``openai`` SDK over the real
HTTP app (in-process, with a clock the test steps so the budgets' arithmetic is exact)."""

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import httpx2
import openai
import pytest
from starlette.applications import Starlette

from llm_simulator import SimulatorConfig, create_app
from llm_simulator.model_table import MODELS
from llm_simulator.rate_limits import RateLimits, duration_text
from llm_simulator.tiers import pace_for, tier_used

MODEL = "gpt-4o-mini"
HI: list[Any] = [{"role": "user", "content": "hi"}]
FAST: dict[str, Any] = {"tokens_per_second": 0, "first_token_delay_seconds": 0, "seed": 3}
LIMIT_HEADERS = (
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
)


class Clock:
    """Monotonic seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def simulator(clock: Clock) -> Callable[..., Starlette]:
    def build(**knobs: Any) -> Starlette:
        return create_app(SimulatorConfig(**{**FAST, **knobs}), clock=clock)

    return build


@pytest.fixture
def connect() -> Callable[[Starlette], Any]:
    """The SDK's real client (its own HTTP stack) and plain HTTP, both into one in-process app."""

    class Clients:
        def __init__(self, app: Starlette) -> None:
            http = openai.DefaultAsyncHttpxClient(transport=httpx2.ASGITransport(app=app))
            self.sdk = openai.AsyncOpenAI(base_url="http://sim/v1", api_key="k", http_client=http, max_retries=0)
            self.wire = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://sim", headers={"Authorization": "Bearer k"}
            )

        async def __aenter__(self) -> "Clients":
            return self

        async def __aexit__(self, *_: object) -> None:
            await self.sdk.close()
            await self.wire.aclose()

    return Clients


@pytest.fixture
async def limited(simulator: Callable[..., Starlette], connect: Any) -> AsyncIterator[Any]:
    """A simulator allowing each model 2 requests and 1000 tokens a minute."""
    async with connect(simulator(requests_per_minute=2, tokens_per_minute=1000)) as clients:
        yield clients


def test_durations_are_written_as_the_api_writes_them() -> None:
    assert [duration_text(s) for s in (0, 0.0001, 0.12, 1.2, 9.816, 20, 360, 432, 3723.5)] == [
        "0s",
        "1ms",
        "120ms",
        "1.2s",
        "9.816s",
        "20s",
        "6m0s",
        "7m12s",
        "1h2m3.5s",
    ]


def test_a_budget_refills_continuously_not_each_minute() -> None:
    limits = RateLimits(requests_per_minute=60, tokens_per_minute=0)
    for _ in range(60):
        assert limits.refusal(MODEL, 10, now=0.0) is None
        limits.take(MODEL, 10, now=0.0)

    refused = limits.refusal(MODEL, 10, now=0.5)
    assert refused is not None
    assert "Please try again in 500ms." in refused.message
    assert refused.headers["retry-after-ms"] == "500"
    # One request a second comes back, not sixty at the top of the next minute.
    assert limits.refusal(MODEL, 10, now=1.0) is None
    assert limits.headers(MODEL, now=1.0)["x-ratelimit-remaining-requests"] == "1"
    assert limits.headers(MODEL, now=1.0)["x-ratelimit-reset-requests"] == "59s"


async def test_the_request_limit_refuses_with_the_apis_body_and_retry_headers(limited: Any, clock: Clock) -> None:
    for _ in range(2):
        await limited.sdk.chat.completions.create(model=MODEL, messages=HI)
    with pytest.raises(openai.RateLimitError) as caught:
        await limited.sdk.chat.completions.create(model=MODEL, messages=HI)

    error = caught.value
    assert (error.status_code, error.type, error.code, error.param) == (429, "requests", "rate_limit_exceeded", None)
    assert error.body == {
        "message": (
            f"Rate limit reached for {MODEL} in organization org-simulator on requests per min (RPM): Limit 2, "
            "Used 2, Requested 1. Please try again in 30s. Visit https://platform.openai.com/account/rate-limits "
            "to learn more."
        ),
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    headers = error.response.headers
    assert (headers["retry-after"], headers["retry-after-ms"]) == ("30", "30000")
    assert headers["x-ratelimit-remaining-requests"] == "0"
    assert headers["x-ratelimit-reset-requests"] == "1m0s"
    # The refusal took nothing: after exactly the wait it was told, the request fits.
    clock.now += 30
    await limited.sdk.chat.completions.create(model=MODEL, messages=HI)


async def test_tokens_count_the_larger_of_the_prompt_and_the_output_cap(limited: Any) -> None:
    raw = await limited.sdk.chat.completions.with_raw_response.create(
        model=MODEL, messages=HI, max_completion_tokens=600
    )
    assert raw.headers["x-ratelimit-remaining-tokens"] == "400"
    assert raw.headers["x-ratelimit-reset-tokens"] == "36s"
    with pytest.raises(openai.RateLimitError) as caught:
        await limited.sdk.chat.completions.create(model=MODEL, messages=HI, max_completion_tokens=600)

    assert caught.value.type == "tokens"
    assert "on tokens per min (TPM): Limit 1000, Used 600, Requested 600. Please try again in 12s." in str(
        caught.value.message
    )
    assert caught.value.response.headers["retry-after"] == "12"


async def test_a_request_above_the_whole_token_limit_is_too_large(limited: Any) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        await limited.sdk.responses.create(model=MODEL, input="hi", max_output_tokens=1500)

    assert _message(caught.value) == (
        f"Request too large for {MODEL} in organization org-simulator on tokens per min (TPM): Limit 1000, "
        "Requested 1500. The input or output tokens must be reduced in order to run successfully. Visit "
        "https://platform.openai.com/account/rate-limits to learn more."
    )
    assert (caught.value.type, caught.value.code) == ("tokens", "rate_limit_exceeded")
    assert "retry-after" not in caught.value.response.headers


async def test_each_model_has_its_own_budget(limited: Any) -> None:
    for _ in range(2):
        await limited.sdk.chat.completions.create(model=MODEL, messages=HI)
    with pytest.raises(openai.RateLimitError):
        await limited.sdk.responses.create(model=MODEL, input="hi")

    await limited.sdk.chat.completions.create(model="gpt-4.1-nano", messages=HI)
    stats = (await limited.wire.get("/_sim/stats")).json()
    assert stats["rate_limited_by_type"] == {"requests": 1}
    assert stats["billed_by_schema"] == {"text": 3}


async def test_every_answer_carries_the_limit_headers(limited: Any) -> None:
    answered = await limited.wire.post("/v1/chat/completions", json={"model": MODEL, "messages": HI})
    created = await limited.wire.post("/v1/responses", json={"model": MODEL, "input": "hi"})
    retrieved = await limited.wire.get(f"/v1/responses/{created.json()['id']}")
    unknown_argument = await limited.wire.post("/v1/chat/completions", json={"model": MODEL, "messages": HI, "x": 1})
    unknown_model = await limited.wire.post("/v1/chat/completions", json={"model": "xyz", "messages": HI})
    anonymous = await limited.wire.post(
        "/v1/responses", json={"model": MODEL, "input": "hi"}, headers={"Authorization": ""}
    )

    for response in (answered, created, retrieved, unknown_argument, unknown_model):
        assert all(name in response.headers for name in LIMIT_HEADERS), response.headers
    assert answered.headers["x-ratelimit-remaining-requests"] == "1"
    assert created.headers["x-ratelimit-remaining-requests"] == "0"
    assert unknown_model.headers["x-ratelimit-remaining-requests"] == "2"  # a fresh budget: nothing metered
    assert anonymous.status_code == 401
    assert not any(name in anonymous.headers for name in LIMIT_HEADERS)


async def test_unlimited_knobs_report_generous_figures(simulator: Callable[..., Starlette], connect: Any) -> None:
    async with connect(simulator()) as clients:
        raw = await clients.sdk.chat.completions.with_raw_response.create(model=MODEL, messages=HI)

    assert raw.headers["x-ratelimit-limit-requests"] == "30000"
    assert raw.headers["x-ratelimit-limit-tokens"] == "150000000"
    assert raw.headers["x-ratelimit-remaining-requests"] == "29999"
    assert raw.headers["x-ratelimit-reset-requests"] == "2ms"


@pytest.mark.parametrize(
    ("model", "asked", "used"),
    [
        (MODEL, None, "default"),
        (MODEL, "auto", "default"),
        (MODEL, "scale", "default"),
        (MODEL, "priority", "priority"),
        (MODEL, "fast", "priority"),
        ("gpt-5-nano", "priority", "default"),
        ("gpt-5-mini", "flex", "flex"),
        ("o3", "flex", "flex"),
    ],
)
async def test_the_answer_names_the_tier_that_served_it(
    simulator: Callable[..., Starlette], connect: Any, model: str, asked: str | None, used: str
) -> None:
    tier: Any = asked or openai.omit
    async with connect(simulator()) as clients:
        completion = await clients.sdk.chat.completions.create(model=model, messages=HI, service_tier=tier)
        response = await clients.sdk.responses.create(model=model, input="hi", service_tier=tier)
        stats = (await clients.wire.get("/_sim/stats")).json()

    assert (completion.service_tier, response.service_tier) == (used, used)
    assert stats["served_by_service_tier"] == {used: 2}


async def test_flex_on_a_model_without_it_is_refused(simulator: Callable[..., Starlette], connect: Any) -> None:
    async with connect(simulator()) as clients:
        with pytest.raises(openai.BadRequestError) as chat:
            await clients.sdk.chat.completions.create(model=MODEL, messages=HI, service_tier="flex")
        with pytest.raises(openai.BadRequestError) as responses:
            await clients.sdk.responses.create(model="gpt-4.1", input="hi", service_tier="flex")
        with pytest.raises(openai.BadRequestError) as bogus:
            await clients.sdk.chat.completions.create(model=MODEL, messages=HI, extra_body={"service_tier": "bogus"})

    for caught in (chat.value, responses.value):
        assert _message(caught) == "Unsupported value: 'service_tier' does not support 'flex' with this model."
        assert (caught.type, caught.param, caught.code) == (
            "invalid_request_error",
            "service_tier",
            "unsupported_value",
        )
        assert "x-ratelimit-limit-requests" in caught.response.headers
    assert (bogus.value.param, bogus.value.code) == ("service_tier", "invalid_value")


async def test_streamed_and_background_answers_carry_the_tier(
    simulator: Callable[..., Starlette], connect: Any
) -> None:
    async with connect(simulator()) as clients:
        stream = await clients.sdk.chat.completions.create(
            model="gpt-5", messages=HI, service_tier="flex", stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
        queued = await clients.sdk.responses.create(
            model="o4-mini", input="hi", service_tier="priority", background=True
        )
        for _ in range(100):
            await asyncio.sleep(0.01)  # the generation runs as a task on this loop
            done = await clients.sdk.responses.retrieve(queued.id)
            if done.status not in ("queued", "in_progress"):
                break

    assert {chunk.service_tier for chunk in chunks} == {"flex"}
    assert (queued.status, queued.service_tier) == ("queued", "priority")
    assert (done.status, done.service_tier) == ("completed", "priority")


async def test_flex_without_capacity_is_a_429_neither_billed_nor_metered(
    simulator: Callable[..., Starlette], connect: Any
) -> None:
    async with connect(simulator(p_flex_unavailable=1, requests_per_minute=5)) as clients:
        with pytest.raises(openai.RateLimitError) as caught:
            await clients.sdk.chat.completions.create(model="gpt-5-mini", messages=HI, service_tier="flex")
        raw = await clients.sdk.chat.completions.with_raw_response.create(model="gpt-5-mini", messages=HI)
        stats = (await clients.wire.get("/_sim/stats")).json()

    assert (caught.value.status_code, caught.value.code) == (429, "resource_unavailable")
    assert caught.value.response.headers["x-ratelimit-remaining-requests"] == "5"
    assert raw.headers["x-ratelimit-remaining-requests"] == "4"
    assert stats["flex_unavailable_total"] == 1
    assert stats["billed_by_schema"] == {"text": 1}
    assert stats["served_by_service_tier"] == {"default": 1}


def test_tiers_pace_and_downgrade_as_documented() -> None:
    config = SimulatorConfig(tokens_per_second=100, first_token_delay_seconds=0.3)
    flex, priority, default = (pace_for(tier, config) for tier in ("flex", "priority", "default"))

    assert (flex.tokens_per_second, flex.first_token_delay_seconds) == (50, 0.6)
    assert priority.tokens_per_second == 150
    assert priority.first_token_delay_seconds == pytest.approx(0.2)
    assert (default.tokens_per_second, default.first_token_delay_seconds) == (100, 0.3)
    # Priority excludes long context (prompts estimated above 128K tokens).
    assert tier_used("priority", MODELS["gpt-4.1"], 128_000) == "priority"
    assert tier_used("priority", MODELS["gpt-4.1"], 128_001) == "default"


def _message(error: openai.APIStatusError) -> str:
    """The body's ``message`` (the SDK's ``.message`` prefixes the status)."""
    assert isinstance(error.body, dict)
    return str(error.body["message"])
