"""The leased consumer's delivery semantics, against a real nats-server with JetStream."""

import asyncio
import contextlib
import time
import uuid
from collections import Counter

import nats
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import StreamInfo

from contracts.events import PlanFailed
from contracts.streams import ConsumerSpec
from service_runtime.bus import ensure_streams
from service_runtime.consumer import LeasedConsumer
from service_runtime.dead_letters import DeadLetter, list_dead_letters, replay
from service_runtime.outcomes import GiveUp, RetryLater

pytestmark = pytest.mark.integration


async def make_stream(nc: Client) -> tuple[str, str]:
    await ensure_streams(nc.jetstream())  # the dead-letter stream
    name = f"TEST_{uuid.uuid4().hex[:10].upper()}"
    subject = f"test.{name.lower()}"
    await nc.jetstream().add_stream(name=name, subjects=[subject])
    return name, subject


async def publish(nc: Client, subject: str, count: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    for request_id in ids:
        event = PlanFailed(request_id=request_id, stage="planner", reason="test")
        await nc.jetstream().publish(subject, event.model_dump_json().encode())
    return ids


async def wait_until(condition, timeout: float = 20) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def test_a_handler_outliving_ack_wait_is_not_redelivered(nc: Client) -> None:
    stream, subject = await make_stream(nc)
    spec = ConsumerSpec("long", stream, subject, ack_wait_seconds=1.0, max_deliver=3)
    calls: Counter[uuid.UUID] = Counter()

    async def slow(event: PlanFailed) -> None:
        calls[event.request_id] += 1
        await asyncio.sleep(4)  # four ack_waits

    consumer = LeasedConsumer(nc.jetstream(), spec, PlanFailed, slow, max_in_flight=10)
    await consumer.start()
    ids = await publish(nc, subject, 3)
    await wait_until(lambda: consumer.in_flight == 0 and len(calls) == 3)
    await consumer.stop(1)
    info = await nc.jetstream().consumer_info(stream, "long")
    assert calls == dict.fromkeys(ids, 1)
    assert info.num_redelivered == 0
    assert info.num_ack_pending == 0


async def test_messages_beyond_capacity_wait_on_the_server_not_in_memory(nc: Client) -> None:
    stream, subject = await make_stream(nc)
    spec = ConsumerSpec("bounded", stream, subject, ack_wait_seconds=1.0, max_deliver=3)
    calls: Counter[uuid.UUID] = Counter()
    running = 0
    most_running = 0

    async def slow(event: PlanFailed) -> None:
        nonlocal running, most_running
        calls[event.request_id] += 1
        running += 1
        most_running = max(most_running, running)
        await asyncio.sleep(1.5)
        running -= 1

    consumer = LeasedConsumer(nc.jetstream(), spec, PlanFailed, slow, max_in_flight=2)
    await consumer.start()
    ids = await publish(nc, subject, 6)
    await wait_until(lambda: sum(calls.values()) == 6 and consumer.in_flight == 0)
    await consumer.stop(1)
    info = await nc.jetstream().consumer_info(stream, "bounded")
    assert calls == dict.fromkeys(ids, 1)
    assert most_running == 2
    assert info.num_redelivered == 0


async def test_retry_later_redelivers_and_give_up_terminates_with_the_hook(nc: Client) -> None:
    stream, subject = await make_stream(nc)
    spec = ConsumerSpec("outcomes", stream, subject, ack_wait_seconds=5, max_deliver=3)
    retry_id, give_up_id, flaky_id = await publish(nc, subject, 3)
    attempts: Counter[uuid.UUID] = Counter()
    given_up: list[tuple[str, str]] = []

    async def handler(event: PlanFailed) -> None:
        attempts[event.request_id] += 1
        if event.request_id == give_up_id:
            raise GiveUp("permanent", "no point retrying")
        if event.request_id == retry_id and attempts[retry_id] == 1:
            raise RetryLater("transient", delay_seconds=0.2)
        if event.request_id == flaky_id:
            raise RuntimeError("always broken")

    async def hook(msg: Msg, exc: GiveUp) -> None:
        given_up.append((msg.data.decode(), exc.reason))

    consumer = LeasedConsumer(
        nc.jetstream(), spec, PlanFailed, handler, max_in_flight=4, on_give_up=hook, retry_delay_seconds=0.1
    )
    await consumer.start()
    await wait_until(lambda: len(given_up) == 2 and attempts[retry_id] == 2)
    await asyncio.sleep(0.5)
    await consumer.stop(1)
    assert attempts == {retry_id: 2, give_up_id: 1, flaky_id: 3}
    reasons = sorted(reason for _, reason in given_up)
    assert reasons == ["permanent", "unexpected_error"]
    info = await nc.jetstream().consumer_info(stream, "outcomes")
    assert info.num_ack_pending == 0

    letters = [d for d in await list_dead_letters(nc.jetstream()) if d.original_subject == subject]
    assert sorted((d.reason, d.deliveries) for d in letters) == [("permanent", "1"), ("unexpected_error", "3")]
    assert {PlanFailed.model_validate_json(d.data).request_id for d in letters} == {give_up_id, flaky_id}


async def test_a_replayed_dead_letter_is_delivered_again(nc: Client) -> None:
    stream, subject = await make_stream(nc)
    seen: Counter[uuid.UUID] = Counter()
    healed = False

    async def handler(event: PlanFailed) -> None:
        seen[event.request_id] += 1
        if not healed:
            raise GiveUp("broken_for_now")

    consumer = LeasedConsumer(
        nc.jetstream(), ConsumerSpec("replayed", stream, subject), PlanFailed, handler, max_in_flight=2
    )
    await consumer.start()
    (request_id,) = await publish(nc, subject, 1)
    await wait_until(lambda: seen[request_id] == 1)
    (letter,) = await wait_for_dead_letters(nc, subject, 1)
    healed = True
    assert await replay(nc.jetstream(), letter.sequence) == subject
    await wait_until(lambda: seen[request_id] == 2)
    await consumer.stop(1)
    assert await wait_for_dead_letters(nc, subject, 0) == []


async def wait_for_dead_letters(nc: Client, subject: str, count: int) -> list[DeadLetter]:
    async with asyncio.timeout(10):
        while True:
            letters = [d for d in await list_dead_letters(nc.jetstream()) if d.original_subject == subject]
            if len(letters) == count:
                return letters
            await asyncio.sleep(0.05)


async def test_a_changed_consumer_spec_updates_the_durable_consumer(nc: Client) -> None:
    stream, subject = await make_stream(nc)

    async def noop(event: PlanFailed) -> None:
        return None

    for ack_wait in (5.0, 9.0):
        consumer = LeasedConsumer(
            nc.jetstream(),
            ConsumerSpec("evolving", stream, subject, ack_wait_seconds=ack_wait),
            PlanFailed,
            noop,
            max_in_flight=1,
        )
        await consumer.start()
        await consumer.stop(0)
    info = await nc.jetstream().consumer_info(stream, "evolving")
    assert info.config.ack_wait == 9.0


async def test_a_stopped_consumer_lets_the_connection_drain_at_once(nats_url: str) -> None:
    # Regression: a consumer that never received a message kept its pull inbox subscribed, and
    # the connection's drain() then waited its full 30 s timeout, so idle workers ignored SIGTERM.
    own = await nats.connect(nats_url)
    stream, subject = await make_stream(own)

    async def never_called(event: PlanFailed) -> None:
        raise AssertionError(event)

    consumer = LeasedConsumer(
        own.jetstream(),
        ConsumerSpec("idle", stream, subject),
        PlanFailed,
        never_called,
        max_in_flight=8,
        fetch_timeout_seconds=0.2,
    )
    await consumer.start()
    await asyncio.sleep(1)
    await consumer.stop(1)
    started = time.monotonic()
    await own.drain()
    assert time.monotonic() - started < 5, "drain waited for its timeout (30 s)"


class _SwallowsCancelDuringStreamInfo(JetStreamContext):
    """What asyncio.wait_for in nats-py's request does on Python < 3.12 when a task is cancelled
    just as the reply arrives: the cancellation is lost and the reply returned."""

    def __init__(self, nc: Client) -> None:
        super().__init__(nc)
        self.inside = asyncio.Event()

    async def stream_info(self, name: str, subjects_filter: str | None = None) -> StreamInfo:
        self.inside.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(1)
        return await super().stream_info(name, subjects_filter)


async def test_a_consumer_stopped_while_a_lag_report_loses_its_cancellation_still_stops(nc: Client) -> None:
    stream, subject = await make_stream(nc)
    js = _SwallowsCancelDuringStreamInfo(nc)

    async def never_called(event: PlanFailed) -> None:
        raise AssertionError(event)

    consumer = LeasedConsumer(js, ConsumerSpec("lagging", stream, subject), PlanFailed, never_called, max_in_flight=1)
    await consumer.start()
    await asyncio.wait_for(js.inside.wait(), 10)
    async with asyncio.timeout(5):  # was: forever, the lag report looping on with its cancellation lost
        await consumer.stop(1)


async def test_a_message_landing_on_an_idle_consumer_is_handled_at_once_not_at_the_pull_timeout(nc: Client) -> None:
    # nats-py's fetch(n) holds a lone message until n arrive or its timeout passes: with a 5 s pull
    # and a 1 s lease, that message would start late and be redelivered while it waited.
    stream, subject = await make_stream(nc)
    spec = ConsumerSpec("idle", stream, subject, ack_wait_seconds=1.0, max_deliver=3)
    started: dict[uuid.UUID, float] = {}

    async def note(event: PlanFailed) -> None:
        started[event.request_id] = time.monotonic()

    consumer = LeasedConsumer(nc.jetstream(), spec, PlanFailed, note, max_in_flight=10, fetch_timeout_seconds=5.0)
    await consumer.start()
    try:
        await asyncio.sleep(1.5)  # the consumer's pull request is open and idle
        published = time.monotonic()
        [request_id] = await publish(nc, subject, 1)
        await wait_until(lambda: request_id in started, timeout=10)
    finally:
        await consumer.stop(1)
    assert started[request_id] - published < 0.5
    info = await nc.jetstream().consumer_info(stream, "idle")
    assert info.num_redelivered == 0


def test_the_private_nats_py_parts_the_pull_requests_rely_on_are_still_there(nc: Client) -> None:
    js = nc.jetstream()
    assert js._nc is nc
    assert js._prefix == "$JS.API"


async def test_a_backlog_is_taken_pull_after_pull_without_waiting_for_any_pull_to_expire(nc: Client) -> None:
    # A delivered message carries its stream subject, not the pull request's reply subject: a pull
    # that counted only messages addressed to its reply never saw its batch filled and waited out its
    # expiry each time, so a backlog went at one batch per pull timeout (5.7 plans/s end to end).
    stream, subject = await make_stream(nc)
    spec = ConsumerSpec("backlog", stream, subject)
    handled: list[uuid.UUID] = []

    async def note(event: PlanFailed) -> None:
        handled.append(event.request_id)

    ids = await publish(nc, subject, 200)
    consumer = LeasedConsumer(nc.jetstream(), spec, PlanFailed, note, max_in_flight=10, fetch_timeout_seconds=60.0)
    await consumer.start()
    try:
        # Twenty pulls of ten: had any of them waited for its expiry, this would take twenty minutes.
        await wait_until(lambda: len(handled) == len(ids), timeout=30)
    finally:
        await consumer.stop(1)
    assert Counter(handled) == Counter(ids)
