"""Background mode re-attaches instead of re-buying: the single-call strategy over the real
``BackgroundResponses`` adapter, against the real simulator (Responses API) and a real JetStream
key-value bucket.

A "crash" is the writer's task cancelled mid-wait, after the response id was recorded; the "new
process" is a second writer with its own NATS connection and its own OpenAI client.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import nats
import openai
import pytest

from contracts.plan import WorkoutPlan
from llm_simulator import SimulatorConfig
from service_runtime.llm import Prompt
from service_runtime.llm.response_ids import ResponseRecord
from service_runtime.llm.responses import BackgroundResponses
from service_runtime.outcomes import GiveUp, RetryLater
from services.planner.planning import INSTRUCTIONS, PlanPrompt
from services.planner.single import SingleCall
from services.planner.state import PlannerState
from tests.simulator_server import serving_simulator

pytestmark = pytest.mark.integration

PROFILE = "I want to build muscle, 3x per week, full gym."
PROMPT = PlanPrompt([INSTRUCTIONS], PROFILE)
# A plan (~5k tokens) takes about 3.5 s at this pace: long enough to crash in the middle of it.
SLOW: dict[str, Any] = {
    "tokens_per_second": 1500,
    "first_token_delay_seconds": 0.2,
    "seed": 5,
    "unstored_background_seconds": 600,
}
FAST: dict[str, Any] = {"tokens_per_second": 0, "first_token_delay_seconds": 0.05, "seed": 5}


@pytest.fixture(scope="module")
def planner_simulator_url() -> Iterator[str]:
    with serving_simulator(SimulatorConfig(**SLOW)) as url:
        yield url


@pytest.fixture
async def sim(planner_simulator_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=planner_simulator_url, timeout=10) as client:
        (await client.patch("/_sim/config", json=SLOW)).raise_for_status()
        (await client.post("/_sim/reset")).raise_for_status()
        yield client


class PlannerProcess:
    """What one planner process holds: its own NATS connection, key-value handle and OpenAI client."""

    def __init__(self, nats_url: str, simulator_url: str, deadline_seconds: float) -> None:
        self._nats_url = nats_url
        self._simulator_url = simulator_url
        self._deadline = deadline_seconds

    async def __aenter__(self) -> "PlannerProcess":
        self.nc = await nats.connect(self._nats_url)
        self.ids = (await PlannerState.open(self.nc.jetstream())).responses
        self.client = openai.AsyncOpenAI(base_url=f"{self._simulator_url}/v1", api_key="sim", max_retries=0, timeout=10)
        self.writer = SingleCall(
            BackgroundResponses(
                self.client, self.ids, model="gpt-4o-mini", deadline_seconds=self._deadline, poll_interval_seconds=0.2
            ),
            tries=2,
        )
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.client.close()
        await self.nc.drain()


@pytest.fixture
async def process_factory(nats_url: str, planner_simulator_url: str) -> AsyncIterator[Any]:
    processes: list[PlannerProcess] = []

    async def start(deadline_seconds: float = 60) -> PlannerProcess:
        process = await PlannerProcess(nats_url, planner_simulator_url, deadline_seconds).__aenter__()
        processes.append(process)
        return process

    yield start
    for process in processes:
        await process.__aexit__()


async def _stats(sim: httpx.AsyncClient) -> dict[str, Any]:
    response = await sim.get("/_sim/stats")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def _recorded(process: PlannerProcess, request_id: uuid.UUID, timeout: float = 10) -> ResponseRecord:
    deadline = time.monotonic() + timeout
    while (record := await process.ids.get(str(request_id))) is None:
        assert time.monotonic() < deadline, "no response id was recorded"
        await asyncio.sleep(0.05)
    return record


async def test_a_restarted_planner_reattaches_to_the_response_it_already_paid_for(
    process_factory: Any, sim: httpx.AsyncClient
) -> None:
    request_id = uuid.uuid4()
    first = await process_factory()
    crashed = asyncio.create_task(first.writer.write(request_id, PROMPT))
    record = await _recorded(first, request_id)
    await asyncio.sleep(0.5)  # mid-generation
    crashed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await crashed
    # Dying does not cancel the paid-for response: it keeps being written for whoever comes next.
    assert (await first.client.responses.retrieve(record.response_id)).status == "in_progress"

    second = await process_factory()
    draft = await second.writer.write(request_id, PROMPT)

    assert isinstance(draft.plan, WorkoutPlan)
    assert draft.usage.calls == 1
    assert draft.usage.completion_tokens > 1000
    stats = await _stats(sim)
    assert stats["responses_created_total"] == 1
    assert stats["completions_by_schema"] == {"WorkoutPlan": 1}
    assert (await second.ids.get(str(request_id))) == record


async def test_two_replicas_on_one_request_share_one_response(process_factory: Any, sim: httpx.AsyncClient) -> None:
    (await sim.patch("/_sim/config", json=FAST)).raise_for_status()
    request_id = uuid.uuid4()
    one, other = await process_factory(), await process_factory()

    first, second = await asyncio.gather(
        one.writer.write(request_id, PROMPT),
        other.writer.write(request_id, PROMPT),
    )

    assert first.plan == second.plan
    stats = await _stats(sim)
    # Both may have asked before either recorded; the loser cancels its own and waits for the winner's.
    assert stats["responses_created_total"] - stats["responses_cancelled_total"] == 1
    assert stats["completions_by_schema"] == {"WorkoutPlan": 1}


async def test_a_response_past_its_deadline_is_cancelled_and_forgotten(
    process_factory: Any, sim: httpx.AsyncClient
) -> None:
    request_id = uuid.uuid4()
    process = await process_factory(deadline_seconds=1)

    with pytest.raises(RetryLater) as raised:
        await process.writer.write(request_id, PROMPT)

    assert raised.value.reason == "llm_timeout"
    assert await process.ids.get(str(request_id)) is None
    stats = await _stats(sim)
    assert stats["responses_cancelled_total"] == 1
    assert stats["completions_total"] == 0


async def test_a_response_the_provider_lost_is_replaced_by_a_new_one(
    process_factory: Any, sim: httpx.AsyncClient
) -> None:
    (await sim.patch("/_sim/config", json=FAST)).raise_for_status()
    request_id = uuid.uuid4()
    process = await process_factory()
    lost = ResponseRecord("resp_lost_in_a_provider_restart", time.time(), calls=1)
    await process.ids.record(str(request_id), lost, None)

    draft = await process.writer.write(request_id, PROMPT)

    assert isinstance(draft.plan, WorkoutPlan)
    assert draft.usage.calls == 2
    stats = await _stats(sim)
    assert stats["responses_created_total"] == 1
    assert stats["completions_by_schema"] == {"WorkoutPlan": 1}
    record = await process.ids.get(str(request_id))
    assert record is not None
    assert record.response_id != lost.response_id


async def test_a_simulator_restart_mid_wait_costs_exactly_one_more_response(
    process_factory: Any, sim: httpx.AsyncClient
) -> None:
    request_id = uuid.uuid4()
    process = await process_factory()
    writing = asyncio.create_task(process.writer.write(request_id, PROMPT))
    await _recorded(process, request_id)
    (await sim.delete("/_sim/responses")).raise_for_status()
    (await sim.patch("/_sim/config", json=FAST)).raise_for_status()

    draft = await asyncio.wait_for(writing, timeout=20)

    assert draft.usage.calls == 2
    stats = await _stats(sim)
    assert stats["responses_created_total"] == 2
    assert stats["completions_by_schema"] == {"WorkoutPlan": 1}


async def test_incomplete_replies_are_regenerated_then_the_request_gives_up(
    process_factory: Any, sim: httpx.AsyncClient
) -> None:
    (await sim.patch("/_sim/config", json=FAST)).raise_for_status()
    process = await process_factory()

    with pytest.raises(GiveUp) as raised:
        await process.writer.write(uuid.uuid4(), PlanPrompt([INSTRUCTIONS], "[[sim:fault=truncate]] " + PROFILE))

    assert raised.value.reason == "invalid_llm_reply"
    stats = await _stats(sim)
    assert stats["responses_created_total"] == 2  # attempts=2
    assert stats["completions_total"] == 0


async def test_a_garbled_poll_is_polled_again_and_the_plan_is_bought_once(
    process_factory: Any, sim: httpx.AsyncClient
) -> None:
    # ``malformed`` in background mode breaks the body of the first retrieval that finds the
    # response finished; the response itself is whole at the provider.
    (await sim.patch("/_sim/config", json=FAST)).raise_for_status()
    process = await process_factory()

    draft = await process.writer.write(uuid.uuid4(), PlanPrompt([INSTRUCTIONS], "[[sim:fault=malformed]] " + PROFILE))

    assert isinstance(draft.plan, WorkoutPlan)
    assert draft.usage.calls == 1
    stats = await _stats(sim)
    assert stats["faults_by_kind"] == {"malformed": 1}
    assert stats["responses_created_total"] == 1
    assert stats["billed_by_schema"] == {"WorkoutPlan": 1}
    assert stats["billed_forced_by_schema"] == {"WorkoutPlan": 1}


async def test_a_failed_response_is_retried_later_with_a_new_one(process_factory: Any, sim: httpx.AsyncClient) -> None:
    (await sim.patch("/_sim/config", json=FAST)).raise_for_status()
    request_id = uuid.uuid4()
    process = await process_factory()

    with pytest.raises(RetryLater) as raised:
        await process.writer.write(request_id, PlanPrompt([INSTRUCTIONS], "[[sim:fault=server_error]] " + PROFILE))

    assert raised.value.reason == "llm_server_error"
    # A failed response cannot be recovered: the redelivery must not re-attach to it.
    assert await process.ids.get(str(request_id)) is None
    draft = await process.writer.write(request_id, PROMPT)
    assert isinstance(draft.plan, WorkoutPlan)
    assert (await _stats(sim))["responses_created_total"] == 2


async def test_quota_exhaustion_gives_up_without_recording_anything(
    process_factory: Any, sim: httpx.AsyncClient
) -> None:
    request_id = uuid.uuid4()
    process = await process_factory()

    with pytest.raises(GiveUp) as raised:
        await process.writer.write(request_id, PlanPrompt([INSTRUCTIONS], "[[sim:fault=quota]] " + PROFILE))

    assert raised.value.reason == "llm_quota_exhausted"
    assert await process.ids.get(str(request_id)) is None
    assert (await _stats(sim))["responses_created_total"] == 0


async def test_a_cancel_handled_on_another_replica_cancels_the_response_at_the_provider(
    process_factory: Any, sim: httpx.AsyncClient
) -> None:
    request_id = uuid.uuid4()
    writing, cancelling = await process_factory(), await process_factory()
    running = asyncio.create_task(writing.writer.write(request_id, PROMPT))
    record = await _recorded(writing, request_id)
    await asyncio.sleep(0.3)  # mid-generation
    running.cancel()  # the writing replica's local stop (or its crash)
    with pytest.raises(asyncio.CancelledError):
        await running

    await cancelling.writer.abandon(request_id)

    assert (await cancelling.client.responses.retrieve(record.response_id)).status == "cancelled"
    assert (await _stats(sim))["responses_cancelled_total"] == 1
    # Forgotten: a later delivery of the request (which the planner skips anyway) cannot re-attach.
    assert await cancelling.ids.get(str(request_id)) is None


async def test_unstored_responses_are_re_attached_within_the_polling_window_and_bought_again_after(
    process_factory: Any, sim: httpx.AsyncClient
) -> None:
    (await sim.patch("/_sim/config", json={**FAST, "unstored_background_seconds": 2})).raise_for_status()
    process = await process_factory()
    calls = BackgroundResponses(
        process.client, process.ids, model="gpt-4o-mini", deadline_seconds=60, poll_interval_seconds=0.2, store=False
    )
    key = str(uuid.uuid4())

    await calls.call(key, Prompt((INSTRUCTIONS,), PROFILE), WorkoutPlan)
    await calls.call(key, Prompt((INSTRUCTIONS,), PROFILE), WorkoutPlan)  # a redelivery, within the window
    assert (await _stats(sim))["responses_created_total"] == 1
    await asyncio.sleep(3)  # past the window: the provider has dropped the response
    again = await calls.call(key, Prompt((INSTRUCTIONS,), PROFILE), WorkoutPlan)

    assert isinstance(again.parsed, WorkoutPlan)
    assert (await _stats(sim))["responses_created_total"] == 2
