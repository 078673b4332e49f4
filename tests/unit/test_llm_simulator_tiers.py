"""The simulator's service tiers: the tier each answer names, Flex refusals and capacity 429s,
and the pace per tier; over the real HTTP app, in-process, with the real ``openai`` SDK."""

import asyncio
from typing import Any

import openai
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response

from llm_simulator import SimulatorConfig
from llm_simulator.model_table import MODELS
from llm_simulator.tiers import pace_for, tier_used
from tests.unit.llm_simulator_in_process import Clock, InProcess, message

MODEL = "gpt-4o-mini"
HI: list[Any] = [{"role": "user", "content": "hi"}]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.mark.parametrize(
    ("model", "asked", "used"),
    [
        (MODEL, None, "default"),
        (MODEL, "auto", "default"),
        (MODEL, "default", "default"),
        (MODEL, "scale", "default"),
        (MODEL, "priority", "priority"),
        (MODEL, "fast", "priority"),
        ("gpt-4.1-nano", "priority", "priority"),
        ("gpt-5-nano", "priority", "default"),
        ("gpt-5-mini", "flex", "flex"),
        ("gpt-5-nano", "flex", "flex"),
        ("o3", "flex", "flex"),
    ],
)
async def test_the_answer_names_the_tier_that_served_it(clock: Clock, model: str, asked: str | None, used: str) -> None:
    tier: Any = asked or openai.omit
    async with InProcess(clock) as clients:
        completion = await clients.sdk.chat.completions.create(model=model, messages=HI, service_tier=tier)
        response = await clients.sdk.responses.create(model=model, input="hi", service_tier=tier)
        stats = await clients.stats()

    assert (completion.service_tier, response.service_tier) == (used, used)
    assert stats["served_by_service_tier"] == {used: 2}


async def test_flex_on_a_model_without_it_is_refused(clock: Clock) -> None:
    async with InProcess(clock) as clients:
        with pytest.raises(openai.BadRequestError) as chat:
            await clients.sdk.chat.completions.create(model=MODEL, messages=HI, service_tier="flex")
        with pytest.raises(openai.BadRequestError) as responses:
            await clients.sdk.responses.create(model="gpt-4.1", input="hi", service_tier="flex")
        with pytest.raises(openai.BadRequestError) as bogus:
            await clients.sdk.chat.completions.create(model=MODEL, messages=HI, extra_body={"service_tier": "bogus"})

    for caught in (chat.value, responses.value):
        assert message(caught) == "Unsupported value: 'service_tier' does not support 'flex' with this model."
        assert (caught.type, caught.param, caught.code) == (
            "invalid_request_error",
            "service_tier",
            "unsupported_value",
        )
        assert "x-ratelimit-limit-requests" in caught.response.headers
    assert (bogus.value.param, bogus.value.code) == ("service_tier", "invalid_value")


async def test_streamed_and_background_answers_carry_the_tier(clock: Clock) -> None:
    async with InProcess(clock) as clients:
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


async def test_tiered_answers_validate_as_the_sdks_types(clock: Clock) -> None:
    chat = {"model": "gpt-5", "messages": HI, "service_tier": "flex"}
    async with InProcess(clock) as clients:
        completion = (await clients.wire.post("/v1/chat/completions", json=chat)).json()
        async with clients.wire.stream("POST", "/v1/chat/completions", json={**chat, "stream": True}) as stream:
            lines = [line async for line in stream.aiter_lines() if line.startswith("data: {")]
        created = {"model": "o3", "input": "hi", "service_tier": "priority"}
        response = (await clients.wire.post("/v1/responses", json=created)).json()

    assert ChatCompletion.model_validate(completion, strict=True).service_tier == "flex"
    chunks = [ChatCompletionChunk.model_validate_json(line.removeprefix("data: "), strict=True) for line in lines]
    assert {chunk.service_tier for chunk in chunks} == {"flex"}
    assert Response.model_validate(response, strict=True).service_tier == "priority"


async def test_flex_without_capacity_is_a_429_neither_billed_nor_metered(clock: Clock) -> None:
    async with InProcess(clock, p_flex_unavailable=1, requests_per_minute=5) as clients:
        with pytest.raises(openai.RateLimitError) as caught:
            await clients.sdk.chat.completions.create(model="gpt-5-mini", messages=HI, service_tier="flex")
        raw = await clients.sdk.chat.completions.with_raw_response.create(model="gpt-5-mini", messages=HI)
        stats = await clients.stats()

    assert (caught.value.status_code, caught.value.code) == (429, "resource_unavailable")
    assert caught.value.response.headers["x-ratelimit-remaining-requests"] == "5"
    assert raw.headers["x-ratelimit-remaining-requests"] == "4"
    assert stats["flex_unavailable_total"] == 1
    assert stats["billed_by_schema"] == {"text": 1}
    assert stats["served_by_service_tier"] == {"default": 1}


async def test_flex_is_slower_and_priority_faster(clock: Clock) -> None:
    knobs = {"tokens_per_second": 2000, "first_token_delay_seconds": 0.05}
    async with InProcess(clock, **knobs) as clients:
        seconds: dict[str, float] = {}
        tiers: tuple[Any, ...] = ("flex", "default", "priority")
        for tier in tiers:
            started = asyncio.get_running_loop().time()
            await clients.sdk.chat.completions.create(model="gpt-5", messages=HI, service_tier=tier)
            seconds[tier] = asyncio.get_running_loop().time() - started

    # Lower bounds only: a loaded machine may be slower, never faster.
    assert seconds["flex"] >= 0.1
    assert seconds["default"] >= 0.05
    assert seconds["priority"] >= 0.033


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
