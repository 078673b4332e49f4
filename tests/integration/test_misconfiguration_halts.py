"""A provider refusal every call would get alike halts the consumer: the queue is kept, not burnt.

Real nats-server; the refusal is the LLM simulator's own 400 for a schema outside the strict
subset, read through the real openai client.
"""

import asyncio
import uuid

import openai
import pydantic
import pytest
from nats.aio.client import Client

from contracts.events import PlanFailed
from contracts.streams import DEAD_LETTERS, ConsumerSpec
from llm_simulator import SimulatorConfig
from service_runtime.consumer import LeasedConsumer, NoneHalted, consuming
from service_runtime.llm import Prompt
from service_runtime.llm.chat import ChatCompletions
from service_runtime.metrics import CONSUMER_HALTED
from service_runtime.outcomes import Misconfigured
from tests.integration.test_leased_consumer import make_stream, publish, wait_until
from tests.simulator_server import serving_simulator

pytestmark = pytest.mark.integration


class Scores(pydantic.BaseModel):
    """Outside the strict subset: a dict is an object without named properties."""

    scores: dict[str, int]


async def test_an_invalid_schema_refusal_halts_the_consumer_and_keeps_every_message(nc: Client) -> None:
    stream, subject = await make_stream(nc)
    spec = ConsumerSpec("misconfigured", stream, subject, ack_wait_seconds=2.0, max_deliver=3)
    dead_before = (await nc.jetstream().stream_info(DEAD_LETTERS.name)).state.messages
    refusals: list[Misconfigured] = []

    with serving_simulator(SimulatorConfig(tokens_per_second=0, first_token_delay_seconds=0)) as url:
        async with openai.AsyncOpenAI(api_key="sk-test", base_url=f"{url}/v1", max_retries=0) as client:

            async def ask(event: PlanFailed) -> None:
                try:
                    calls = ChatCompletions(client, model="gpt-4o-mini", deadline_seconds=10, stream=False)
                    await calls.call("scores", Prompt((), "scores please"), Scores)
                except Misconfigured as exc:
                    refusals.append(exc)
                    raise

            halts = NoneHalted()
            consumer = LeasedConsumer(nc.jetstream(), spec, PlanFailed, ask, max_in_flight=1)
            async with consuming([consumer], 1, halts):
                assert await halts()
                await publish(nc, subject, 5)
                await wait_until(lambda: consumer.halted is not None)
                await asyncio.sleep(1.5)  # would be time enough to burn the rest of the queue
                assert not await halts()

    (refusal,) = refusals  # one call, then no more work taken
    assert "Invalid schema for response_format 'Scores'" in refusal.detail
    assert "additionalProperties" in refusal.detail
    info = await nc.jetstream().consumer_info(stream, "misconfigured")
    assert info.num_pending + info.num_ack_pending == 5  # all five still there for a fixed replica
    assert (await nc.jetstream().stream_info(DEAD_LETTERS.name)).state.messages == dead_before
    assert CONSUMER_HALTED.labels("misconfigured", "llm_misconfigured")._value.get() == 1


async def test_a_fixed_replica_takes_the_kept_messages(nc: Client) -> None:
    stream, subject = await make_stream(nc)
    spec = ConsumerSpec("refixed", stream, subject, ack_wait_seconds=2.0, max_deliver=5)

    async def refuse(event: PlanFailed) -> None:
        raise Misconfigured("llm_misconfigured", "HTTP 400: Invalid schema")

    handled: list[uuid.UUID] = []

    async def handle(event: PlanFailed) -> None:
        handled.append(event.request_id)

    broken = LeasedConsumer(nc.jetstream(), spec, PlanFailed, refuse, max_in_flight=4, halted_redelivery_seconds=1)
    ids = await publish(nc, subject, 3)
    async with consuming([broken], 1):
        await wait_until(lambda: broken.halted is not None)
    # The rollout with the fix: a new process, same durable consumer.
    fixed = LeasedConsumer(nc.jetstream(), spec, PlanFailed, handle, max_in_flight=4, retry_delay_seconds=0.1)
    async with consuming([fixed], 1):
        await wait_until(lambda: sorted(handled) == sorted(ids))
