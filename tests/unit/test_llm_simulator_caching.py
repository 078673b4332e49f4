"""The simulator's prompt caching, driven by the real ``openai`` SDK over the real HTTP app
(in-process, with a clock the test steps to age the cache)."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from llm_simulator.pacing import prompt_tokens
from llm_simulator.prompt_cache import PromptCache, linearised
from tests.unit.llm_simulator_in_process import Clock, InProcess

MODEL = "gpt-4o-mini"
# ~1,500 tokens of instructions every call repeats, then a short question that varies.
INSTRUCTIONS = "You are an experienced strength and conditioning coach. Keep every answer practical. " * 70


class Clients(InProcess):
    async def cached(self, question: str, model: str = MODEL, **extra: Any) -> int:
        """The cached tokens a chat call with the instructions and ``question`` reports."""
        completion = await self.sdk.chat.completions.create(model=model, messages=_messages(question), **extra)
        assert completion.usage is not None
        assert completion.usage.prompt_tokens_details is not None
        return completion.usage.prompt_tokens_details.cached_tokens or 0


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def clients(clock: Clock) -> AsyncIterator[Clients]:
    async with Clients(clock) as clients:
        yield clients


def _messages(question: str) -> list[Any]:
    return [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": question}]


def _tokens(question: str) -> int:
    return prompt_tokens([INSTRUCTIONS, question])


def _shared_boundary(first: str, second: str) -> int:
    """The longest cacheable boundary (1024 + 128k tokens) inside the prefix the two prompts share."""
    one = linearised([("system", INSTRUCTIONS), ("user", first)])
    two = linearised([("system", INSTRUCTIONS), ("user", second)])
    shared = next((i for i, (a, b) in enumerate(zip(one, two, strict=False)) if a != b), min(len(one), len(two)))
    tokens = shared // 4
    return 0 if tokens < 1024 else 1024 + (tokens - 1024) // 128 * 128


def test_the_linear_prompt_is_exactly_the_prompt_tokens_count() -> None:
    messages = [("system", INSTRUCTIONS), ("user", "Exercise: Plank"), ("assistant", "x" * 7)]
    assert len(linearised(messages)) == 4 * prompt_tokens([text for _, text in messages])


async def test_the_first_call_writes_the_cache_and_the_next_reads_it_in_128_token_steps(clients: Clients) -> None:
    question = "How often should I deadlift?"
    total = _tokens(question)

    assert await clients.cached(question) == 0
    cached = await clients.cached(question)

    assert total >= 1024
    assert cached == 1024 + (total - 1024) // 128 * 128
    assert total - 128 < cached <= total


async def test_a_shared_prefix_is_read_up_to_the_last_boundary_inside_it(clients: Clients) -> None:
    first, second = "How often should I deadlift?", "What about squats?"
    await clients.cached(first)

    cached = await clients.cached(second)

    assert cached == _shared_boundary(first, second) > 0
    assert cached < _tokens(second)


async def test_short_prompts_are_never_cached(clients: Clients) -> None:
    for _ in range(2):
        completion = await clients.sdk.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
        assert completion.usage is not None
        assert completion.usage.prompt_tokens_details is not None
        assert completion.usage.prompt_tokens_details.cached_tokens == 0


async def test_caches_are_per_model_and_per_prompt_cache_key(clients: Clients) -> None:
    question = "How often should I deadlift?"
    await clients.cached(question, prompt_cache_key="user-1")

    assert await clients.cached(question, prompt_cache_key="user-2") == 0
    assert await clients.cached(question) == 0  # no key is a key of its own
    assert await clients.cached(question, model="gpt-4.1-nano", prompt_cache_key="user-1") == 0
    assert await clients.cached(question, prompt_cache_key="user-1") > 0


async def test_an_unused_prefix_expires(clock: Clock) -> None:
    question = "How often should I deadlift?"
    async with Clients(clock, prompt_cache_seconds=300) as clients:
        await clients.cached(question)
        clock.now += 299
        assert await clients.cached(question) > 0  # and this use keeps it alive
        clock.now += 299
        assert await clients.cached(question) > 0
        clock.now += 301
        assert await clients.cached(question) == 0


async def test_zero_seconds_turns_caching_off(clock: Clock) -> None:
    async with Clients(clock, prompt_cache_seconds=0) as clients:
        assert [await clients.cached("Why?") for _ in range(2)] == [0, 0]


async def test_streams_and_responses_report_cached_tokens(clients: Clients) -> None:
    question = "How often should I deadlift?"
    await clients.cached(question)
    stream = await clients.sdk.chat.completions.create(
        model=MODEL, messages=_messages(question), stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]
    created = [
        await clients.sdk.responses.create(model="gpt-5-nano", instructions=INSTRUCTIONS, input=question)
        for _ in range(2)
    ]

    usage = chunks[-1].usage
    assert usage is not None
    assert usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 1024 + (_tokens(question) - 1024) // 128 * 128
    assert [r.usage.input_tokens_details.cached_tokens for r in created if r.usage] == [
        0,
        usage.prompt_tokens_details.cached_tokens,
    ]


async def test_stats_count_prompt_and_cached_tokens(clients: Clients) -> None:
    question = "How often should I deadlift?"
    cached = [await clients.cached(question) for _ in range(3)]

    stats = await clients.stats()
    assert stats["prompt_tokens_total"] == 3 * _tokens(question)
    assert stats["cached_tokens_total"] == sum(cached) == 2 * cached[1]
    assert (await clients.wire.post("/_sim/reset")).status_code == 200
    assert await clients.cached(question) == 0  # a reset empties the cache


def test_the_cache_keeps_at_most_its_cap_of_entries() -> None:
    cache = PromptCache(max_entries=50)
    for n in range(40):
        messages = [("user", f"{n} " + "y" * 8000)]
        assert cache.cached_tokens(MODEL, None, messages, now=float(n), ttl=300) == 0

    assert len(cache) <= 50
    # The newest prompt's entries survive; its longest prefix is read back.
    assert cache.cached_tokens(MODEL, None, [("user", "39 " + "y" * 8000)], now=40.0, ttl=300) == 1920


async def test_a_prefix_is_readable_only_once_its_writer_has_its_first_token(clock: Clock) -> None:
    question = "How often should I deadlift?"
    async with Clients(clock, first_token_delay_seconds=0.2) as clients:
        # Sent at the same instant: the second finds the prefix still being written, as at the provider.
        assert await asyncio.gather(clients.cached(question), clients.cached(question)) == [0, 0]
        clock.now += 0.5
        assert await clients.cached(question) > 0
