"""The worker factory runs declared routes on a real nats-server: each handler gets its events, a
route that gives up fails the request (or not, as it says), chores run around the consumers until
they drained, and a consumer the roster does not list stops the worker from starting."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import nats
import pytest
from nats.aio.client import Client

from contracts import roster, subjects
from contracts.events import PlanFailed
from contracts.roster import ServiceSpec
from contracts.streams import ConsumerSpec
from service_runtime.bus import EventBus
from service_runtime.outcomes import GiveUp
from service_runtime.settings import ServiceSettings
from service_runtime.worker import Route, Wiring, create_worker
from services.persister.app import create_app as create_persister
from services.persister.settings import PersisterSettings
from tests.integration.gateway_client import serving
from tests.integration.test_leased_consumer import make_stream, publish, wait_until

pytestmark = pytest.mark.integration


@asynccontextmanager
async def plan_failures(nc: Client) -> AsyncIterator[list[PlanFailed]]:
    """Every ``plan.failed`` event published while the block runs."""
    seen: list[PlanFailed] = []

    async def heard(msg: Any) -> None:
        seen.append(PlanFailed.model_validate_json(msg.data))

    subscription = await nc.subscribe(subjects.PLAN_FAILED, cb=heard)
    await nc.flush()  # the server has the subscription before anything is published
    try:
        yield seen
    finally:
        await subscription.unsubscribe()


async def test_routes_run_their_handlers_and_only_a_failing_route_fails_the_request(nc: Client, nats_url: str) -> None:
    stream, subject = await make_stream(nc)
    counted = ConsumerSpec("worker-counted", stream, subject, ack_wait_seconds=5, max_deliver=1)
    quiet = ConsumerSpec("worker-quiet", stream, subject, ack_wait_seconds=5, max_deliver=1)
    service = ServiceSpec("profiler", (counted, quiet))
    handled: dict[str, list[uuid.UUID]] = {"counted": [], "quiet": []}
    chore_ran = asyncio.Event()

    async def refuse_counted(event: PlanFailed) -> None:
        handled["counted"].append(event.request_id)
        raise GiveUp("broken", "always")

    async def refuse_quietly(event: PlanFailed) -> None:
        handled["quiet"].append(event.request_id)
        raise GiveUp("broken", "always")

    @asynccontextmanager
    async def chore() -> AsyncIterator[None]:
        chore_ran.set()
        yield

    @asynccontextmanager
    async def wiring(bus: EventBus) -> AsyncIterator[Wiring]:
        yield Wiring(
            [
                Route(counted, PlanFailed, refuse_counted, max_in_flight=2),
                Route(quiet, PlanFailed, refuse_quietly, fails_request=False),
            ],
            background=[chore()],
        )

    app = create_worker(service, ServiceSettings(nats_url=nats_url), wiring, max_in_flight=4)
    async with serving(app) as client, plan_failures(nc) as seen:
        ready = await client.get("/readyz")
        ids = await publish(nc, subject, 2)
        await wait_until(lambda: len(handled["quiet"]) == 2 and len([f for f in seen if f.request_id in ids]) >= 2)
        await asyncio.sleep(0.5)  # time for a plan.failed the quiet route should not have published
        failed = [f for f in seen if f.request_id in ids]

    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"nats": True, "consumers": True}
    assert chore_ran.is_set()
    assert sorted(handled["counted"]) == sorted(handled["quiet"]) == sorted(ids)
    # One plan.failed per request, from the counted route alone, naming the service as its stage.
    assert sorted(f.request_id for f in failed) == sorted(ids)
    assert {(f.stage, f.reason) for f in failed} == {("profiler", "broken")}


async def test_chores_outlast_the_work_in_flight_when_the_worker_stops(nc: Client, nats_url: str) -> None:
    stream, subject = await make_stream(nc)
    spec = ConsumerSpec("worker-draining", stream, subject, ack_wait_seconds=5)
    order: list[str] = []
    started = asyncio.Event()

    async def slow(event: PlanFailed) -> None:
        started.set()
        await asyncio.sleep(0.5)
        order.append("handled")

    @asynccontextmanager
    async def chore() -> AsyncIterator[None]:
        order.append("chore started")
        yield
        order.append("chore stopped")

    @asynccontextmanager
    async def wiring(bus: EventBus) -> AsyncIterator[Wiring]:
        yield Wiring([Route(spec, PlanFailed, slow)], background=[chore()])

    settings = ServiceSettings(nats_url=nats_url, shutdown_grace_seconds=60)  # ample on a loaded machine
    app = create_worker(ServiceSpec("profiler", (spec,)), settings, wiring, max_in_flight=1)
    async with serving(app):
        await publish(nc, subject, 1)
        await asyncio.wait_for(started.wait(), 20)

    assert order == ["chore started", "handled", "chore stopped"]


async def test_a_consumer_the_roster_does_not_list_stops_the_worker_from_starting(nats_url: str) -> None:
    unlisted = ConsumerSpec("worker-unlisted", "WORKOUT_EVENTS", subjects.PLAN_FAILED)

    async def ignore(event: PlanFailed) -> None:
        return None

    @asynccontextmanager
    async def wiring(bus: EventBus) -> AsyncIterator[Wiring]:
        yield Wiring([Route(unlisted, PlanFailed, ignore)])

    app = create_worker(roster.PROFILER, ServiceSettings(nats_url=nats_url), wiring, max_in_flight=1)
    with pytest.raises(ValueError, match=r"profiler would run the consumers \['worker-unlisted'\].*\['profiler'\]"):
        async with serving(app):
            pass
    nc = await nats.connect(nats_url)
    try:
        with pytest.raises(nats.js.errors.NotFoundError):
            await nc.jetstream().consumer_info("WORKOUT_EVENTS", "worker-unlisted")
    finally:
        await nc.close()


async def test_the_persister_is_ready_with_nats_postgres_and_its_consumers(nats_url: str, database_url: str) -> None:
    app = create_persister(PersisterSettings(nats_url=nats_url, database_url=database_url))
    async with serving(app) as client:
        ready = await client.get("/readyz")
        # Each check has 2 s to answer: on a loaded machine the first probe may miss it, as a kubelet's may.
        for _ in range(20):
            if ready.status_code == 200:
                break
            await asyncio.sleep(0.5)
            ready = await client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"] == {"nats": True, "postgres": True, "consumers": True}
