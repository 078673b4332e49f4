"""The simulator's rate limits, driven by the real ``openai`` SDK over the real HTTP app
(in-process, with a clock the test steps so the budgets' arithmetic is exact)."""

from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from llm_simulator.rate_limits import RateLimits, duration_text
from tests.unit.llm_simulator_in_process import Clock, InProcess, message

MODEL = "gpt-4o-mini"
HI: list[Any] = [{"role": "user", "content": "hi"}]
LIMIT_HEADERS = (
    "x-ratelimit-limit-requests",
    "x-ratelimit-limit-tokens",
    "x-ratelimit-remaining-requests",
    "x-ratelimit-remaining-tokens",
    "x-ratelimit-reset-requests",
    "x-ratelimit-reset-tokens",
)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def limited(clock: Clock) -> AsyncIterator[InProcess]:
    """A simulator allowing each model 2 requests and 1000 tokens a minute."""
    async with InProcess(clock, requests_per_minute=2, tokens_per_minute=1000) as clients:
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


async def test_the_request_limit_refuses_with_the_apis_body_and_retry_headers(limited: InProcess, clock: Clock) -> None:
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


async def test_tokens_count_the_larger_of_the_prompt_and_the_output_cap(limited: InProcess) -> None:
    raw = await limited.sdk.chat.completions.with_raw_response.create(
        model=MODEL, messages=HI, max_completion_tokens=600
    )
    assert raw.headers["x-ratelimit-remaining-tokens"] == "400"
    assert raw.headers["x-ratelimit-reset-tokens"] == "36s"
    with pytest.raises(openai.RateLimitError) as caught:
        await limited.sdk.chat.completions.create(model=MODEL, messages=HI, max_completion_tokens=600)

    assert caught.value.type == "tokens"
    assert "on tokens per min (TPM): Limit 1000, Used 600, Requested 600. Please try again in 12s." in message(
        caught.value
    )
    assert caught.value.response.headers["retry-after"] == "12"


async def test_a_request_above_the_whole_token_limit_is_too_large(limited: InProcess) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        await limited.sdk.responses.create(model=MODEL, input="hi", max_output_tokens=1500)

    assert message(caught.value) == (
        f"Request too large for {MODEL} in organization org-simulator on tokens per min (TPM): Limit 1000, "
        "Requested 1500. The input or output tokens must be reduced in order to run successfully. Visit "
        "https://platform.openai.com/account/rate-limits to learn more."
    )
    assert (caught.value.type, caught.value.code) == ("tokens", "rate_limit_exceeded")
    assert "retry-after" not in caught.value.response.headers


async def test_each_model_has_its_own_budget(limited: InProcess) -> None:
    for _ in range(2):
        await limited.sdk.chat.completions.create(model=MODEL, messages=HI)
    with pytest.raises(openai.RateLimitError):
        await limited.sdk.responses.create(model=MODEL, input="hi")

    await limited.sdk.chat.completions.create(model="gpt-4.1-nano", messages=HI)
    stats = await limited.stats()
    assert stats["rate_limited_by_type"] == {"requests": 1}
    assert stats["billed_by_schema"] == {"text": 3}


async def test_every_answer_carries_the_limit_headers(limited: InProcess) -> None:
    wire = limited.wire
    answered = await wire.post("/v1/chat/completions", json={"model": MODEL, "messages": HI})
    created = await wire.post("/v1/responses", json={"model": MODEL, "input": "hi"})
    retrieved = await wire.get(f"/v1/responses/{created.json()['id']}")
    unknown_argument = await wire.post("/v1/chat/completions", json={"model": MODEL, "messages": HI, "x": 1})
    unknown_model = await wire.post("/v1/chat/completions", json={"model": "xyz", "messages": HI})
    anonymous = await wire.post("/v1/responses", json={"model": MODEL, "input": "hi"}, headers={"Authorization": ""})

    for response in (answered, created, retrieved, unknown_argument, unknown_model):
        assert all(name in response.headers for name in LIMIT_HEADERS), response.headers
    assert answered.headers["x-ratelimit-remaining-requests"] == "1"
    assert created.headers["x-ratelimit-remaining-requests"] == "0"
    assert unknown_model.headers["x-ratelimit-remaining-requests"] == "2"  # a fresh budget: nothing metered
    assert anonymous.status_code == 401
    assert not any(name in anonymous.headers for name in LIMIT_HEADERS)


async def test_unlimited_knobs_report_generous_figures(clock: Clock) -> None:
    async with InProcess(clock) as clients:
        raw = await clients.sdk.chat.completions.with_raw_response.create(model=MODEL, messages=HI)

    assert raw.headers["x-ratelimit-limit-requests"] == "30000"
    assert raw.headers["x-ratelimit-limit-tokens"] == "150000000"
    assert raw.headers["x-ratelimit-remaining-requests"] == "29999"
    assert raw.headers["x-ratelimit-reset-requests"] == "2ms"


async def test_limits_change_at_runtime(clock: Clock) -> None:
    async with InProcess(clock) as clients:
        patched = await clients.wire.patch("/_sim/config", json={"requests_per_minute": 1, "tokens_per_minute": 0})
        await clients.sdk.chat.completions.create(model=MODEL, messages=HI)
        with pytest.raises(openai.RateLimitError) as caught:
            await clients.sdk.chat.completions.create(model=MODEL, messages=HI)
        rejected = await clients.wire.patch("/_sim/config", json={"tokens_per_minute": -1})
        reset = await clients.wire.post("/_sim/reset")
        await clients.sdk.chat.completions.create(model=MODEL, messages=HI)  # a reset refills every budget

    assert patched.json()["requests_per_minute"] == 1
    assert caught.value.response.headers["retry-after"] == "60"
    assert rejected.status_code == 422
    assert reset.status_code == 200
