"""Deadlines per call and the fallback model, against the simulator over real HTTP with the real
openai client (built as the services build it), and a real JetStream bucket for background records:
a stream that never starts is stopped at its first-token deadline, one that stalls mid-way at the
read timeout; a background response stuck in the queue is cancelled and the next call buys a new
one; a model the account does not serve falls back to one it does."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pydantic
import pytest
from nats.aio.client import Client

from contracts.events import LlmCallRecorded
from llm_simulator import SimulatorConfig
from service_runtime.llm import LlmSettings, Prompt, StructuredCalls, build_openai_client
from service_runtime.llm.admission import admitted
from service_runtime.llm.chat import ChatCompletions
from service_runtime.llm.fallback import WithFallback
from service_runtime.llm.metering import LlmMeter
from service_runtime.llm.responses import BackgroundResponses
from service_runtime.logs import bind_request_id
from service_runtime.metrics import LLM_CALLS, LLM_FALLBACKS
from service_runtime.outcomes import RetryLater
from services.planner.state import PlannerState, RecordedResponses
from tests.fakes import RecordingPublisher
from tests.simulator_server import reset_simulator, serving_simulator, simulator_stats

pytestmark = pytest.mark.integration

MODEL = "gpt-4o-mini"
FALLBACK = "gpt-4.1-mini"
FAST: dict[str, Any] = {"tokens_per_second": 0, "first_token_delay_seconds": 0, "seed": 5, "hang_seconds": 30}
READ_TIMEOUT = 0.5


class Greeting(pydantic.BaseModel):
    text: str


PROMPT = Prompt(("Greet the user.",), "Say hello.")


@pytest.fixture(scope="module")
def simulator_url() -> Iterator[str]:
    with serving_simulator(SimulatorConfig(**FAST)) as url:
        yield url


@pytest.fixture
async def admin(simulator_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=simulator_url, timeout=10) as client:
        await reset_simulator(client, FAST)
        yield client


@pytest.fixture
async def llm(simulator_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    """The client as the services build it (aiohttp transport, no SDK retries), with a short read timeout."""
    settings = LlmSettings(
        OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=f"{simulator_url}/v1", LLM_READ_TIMEOUT_SECONDS=READ_TIMEOUT
    )
    async with build_openai_client(settings) as client:
        yield client


async def _configure(admin: httpx.AsyncClient, **knobs: Any) -> None:
    (await admin.patch("/_sim/config", json=knobs)).raise_for_status()


def _timeouts() -> float:
    value: float = LLM_CALLS.labels("planner", MODEL, "timeout")._value.get()
    return value


@pytest.mark.parametrize(
    ("knobs", "said"),
    [({}, "[[sim:fault=hang]] Say hello."), ({"first_token_delay_seconds": 30}, "Say hello.")],
    ids=["hang", "role-chunk-then-nothing"],
)
async def test_a_stream_without_a_first_token_is_stopped_at_its_first_token_deadline(
    llm: openai.AsyncOpenAI, admin: httpx.AsyncClient, knobs: dict[str, Any], said: str
) -> None:
    await _configure(admin, **knobs)
    # The read timeout is out of the way here: only the first-token deadline can end the wait early.
    calls = ChatCompletions(
        llm.with_options(timeout=30),
        model=MODEL,
        deadline_seconds=30,
        first_token_seconds=0.5,
        meter=LlmMeter("planner", model=MODEL),
    )
    timeouts = _timeouts()
    started = time.monotonic()

    with pytest.raises(RetryLater) as raised:
        await calls.call("k", Prompt(("Greet the user.",), said), Greeting)

    assert raised.value.reason == "llm_timeout"
    assert 0.5 <= time.monotonic() - started < 2
    assert _timeouts() - timeouts == 1


async def test_a_stream_that_stalls_mid_way_ends_at_the_read_timeout(
    llm: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    # The first token at once, the next five seconds later: a silence past the read timeout.
    await _configure(admin, tokens_per_second=0.2)
    calls = ChatCompletions(llm, model=MODEL, deadline_seconds=30, first_token_seconds=30)
    started = time.monotonic()

    with pytest.raises(RetryLater) as raised:
        await calls.call("k", PROMPT, Greeting)

    assert raised.value.reason == "llm_timeout"
    assert READ_TIMEOUT <= time.monotonic() - started < 2


async def test_a_reply_that_starts_in_time_may_take_longer_than_the_first_token_deadline(
    llm: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    await _configure(admin, tokens_per_second=15)  # a few tokens a chunk, about half a second in all
    calls = ChatCompletions(llm, model=MODEL, deadline_seconds=30, first_token_seconds=0.2)
    started = time.monotonic()

    reply = await calls.call("k", PROMPT, Greeting)

    assert reply.parsed.text
    assert time.monotonic() - started > 0.2


@pytest.fixture
async def records(nc: Client) -> RecordedResponses:
    return (await PlannerState.open(nc.jetstream())).responses


async def test_a_response_stuck_in_the_queue_is_cancelled_and_the_next_call_starts_a_new_one(
    llm: openai.AsyncOpenAI, admin: httpx.AsyncClient, records: RecordedResponses
) -> None:
    await _configure(admin, p_stuck_queued=1.0)
    calls = BackgroundResponses(
        llm, records, model=MODEL, deadline_seconds=30, poll_interval_seconds=0.1, queued_seconds=0.5
    )
    key = f"stuck-{uuid.uuid4()}"
    started = time.monotonic()

    with pytest.raises(RetryLater) as raised:
        await calls.call(key, PROMPT, Greeting)

    assert raised.value.reason == "llm_stuck_queued"
    assert 0.5 <= time.monotonic() - started < 2
    assert await records.get(key) is None  # forgotten: the next delivery does not re-attach to it
    stats = await simulator_stats(admin)
    assert (stats["responses_created_total"], stats["responses_cancelled_total"]) == (1, 1)
    assert stats["billed_by_schema"] == {}  # never picked up, so nothing was generated

    await _configure(admin, p_stuck_queued=0.0)  # the provider picks responses up again
    reply = await calls.call(key, PROMPT, Greeting)

    assert reply.parsed.text
    stats = await simulator_stats(admin)
    assert (stats["responses_created_total"], stats["completions_total"]) == (2, 1)


@pytest.mark.parametrize("mode", ["chat_stream", "responses_background"])
async def test_a_model_the_account_does_not_serve_falls_back_to_one_it_does(
    llm: openai.AsyncOpenAI, admin: httpx.AsyncClient, records: RecordedResponses, mode: str
) -> None:
    await _configure(admin, models=[FALLBACK])
    ledger = RecordingPublisher()
    settings = LlmSettings(OPENAI_API_KEY="sk-test")

    def calls_to(model: str) -> StructuredCalls:
        """As the composition roots build them: the mode's adapter, its own meter, behind admission."""
        meter = LlmMeter("planner", ledger=ledger, model=model)
        adapter: StructuredCalls = (
            ChatCompletions(llm, model=model, deadline_seconds=30, first_token_seconds=10, meter=meter)
            if mode == "chat_stream"
            else BackgroundResponses(
                llm, records, model=model, deadline_seconds=30, poll_interval_seconds=0.05, meter=meter
            )
        )
        return admitted(adapter, settings, None, stage="planner")

    calls = WithFallback(calls_to(MODEL), calls_to(FALLBACK), stage="planner")
    fallbacks = LLM_FALLBACKS.labels("planner", MODEL, FALLBACK, "llm_model_not_found")._value.get()
    key = f"fallback-{uuid.uuid4()}"

    async def handling_a_request() -> str:
        bind_request_id(uuid.uuid4())  # in this task only
        return (await calls.call(key, PROMPT, Greeting)).usage.model

    served_by = await asyncio.create_task(handling_a_request())

    assert served_by.startswith(FALLBACK)
    (recorded,) = ledger.of_type(LlmCallRecorded)
    assert isinstance(recorded, LlmCallRecorded)
    assert (recorded.model, recorded.outcome) == (FALLBACK, "ok")
    assert LLM_FALLBACKS.labels("planner", MODEL, FALLBACK, "llm_model_not_found")._value.get() - fallbacks == 1
    stats = await simulator_stats(admin)
    assert stats["completions_total"] == 1
    if mode == "responses_background":
        # The fallback's response is recorded under its own key; the primary never created one.
        assert await records.get(key) is None
        assert await records.get(f"{key}.fallback") is not None
