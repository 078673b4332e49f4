"""One factory for every worker process, its consumers declared as data.

A worker's composition root reads its settings and hands ``create_worker`` its roster entry and a
builder: an async context manager that, given the connected bus, builds the clients and use cases
and yields a ``Wiring``, the ``Route``s (which event each durable consumer takes and which handler
runs on it) and any background chores. The routes come out of the lifespan, not the composition
root, because their handlers need clients that only exist while the process runs.

The factory does the rest, the same for every worker: one ``EventBus`` named after the service, a
``LeasedConsumer`` per route (the settings' lease overrides applied, ``plan.failed`` on giving up
unless the route says otherwise), the chores around them, readiness (NATS, no consumer halted, the
service's own checks), health and metrics over HTTP, and on shutdown the consumers drained, then
the chores stopped, then the builder's clients closed, then the bus. ``run_worker`` is the
``python -m`` entry point that serves it.
"""

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import KW_ONLY, dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

from nats.aio.msg import Msg
from starlette.applications import Starlette

from contracts.events import Event, FailureStage, PlanFailed
from contracts.roster import ServiceSpec
from contracts.streams import ConsumerSpec
from service_runtime.bus import EventBus, EventPublisher
from service_runtime.consumer import GiveUpHook, LeasedConsumer, NoneHalted, consuming
from service_runtime.health import ReadinessCheck, serve, worker_app
from service_runtime.logs import configure_logging, reason
from service_runtime.outcomes import GiveUp
from service_runtime.settings import ServiceSettings
from service_runtime.tracing import configure_tracing

__all__ = ["Builder", "Route", "Wiring", "create_worker", "fail_request_on_give_up", "run_worker"]

log = logging.getLogger(__name__)

E = TypeVar("E", bound=Event)
S = TypeVar("S", bound=ServiceSettings)


@dataclass(frozen=True)
class Route(Generic[E]):
    """One durable consumer of a worker: the events it takes and the handler run on each."""

    spec: ConsumerSpec
    event_type: type[E]
    handler: Callable[[E], Awaitable[None]]
    _: KW_ONLY
    # Messages handled at once per process; None takes the worker's ``max_in_flight``.
    max_in_flight: int | None = None
    # Giving up on a message publishes ``plan.failed`` for its request. Off where a lost message must
    # not fail a plan (the cost ledger) or could loop (``plan.failed``'s own consumer).
    fails_request: bool = True


@dataclass(frozen=True)
class Wiring:
    """What a worker's builder yields: its routes, and chores (``periodic.every``, say) run beside them."""

    routes: Sequence[Route[Any]]
    # Entered before the consumers start, left after they drained: a chore that in-flight work relies
    # on (the planner hearing broadcast cancels) serves it to the end.
    background: Sequence[AbstractAsyncContextManager[object]] = ()


Builder = Callable[[EventBus], AbstractAsyncContextManager[Wiring]]


def create_worker(
    service: ServiceSpec,
    settings: ServiceSettings,
    build: Builder,
    *,
    max_in_flight: int,
    checks: Mapping[str, ReadinessCheck] | None = None,
) -> Starlette:
    """The ASGI app of one worker process; nothing connects until its lifespan starts.

    ``checks`` are readiness checks of the service's own (its database, say), beside ``nats`` and
    ``consumers``. Startup fails if the routes' durable consumers are not the ones ``service`` lists.
    """
    bus = EventBus(
        settings.nats_url,
        client_name=service.name,
        publish_timeout_seconds=settings.publish_timeout_seconds,
        replicas=settings.stream_replicas,
    )
    halts = NoneHalted()

    def consumer(route: Route[Any]) -> LeasedConsumer[Any]:
        return LeasedConsumer(
            bus.jetstream,
            settings.consumer(route.spec),
            route.event_type,
            route.handler,
            max_in_flight=route.max_in_flight or max_in_flight,
            on_give_up=fail_request_on_give_up(bus, service.name) if route.fails_request else None,
        )

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with bus, build(bus) as wiring:
            _check_roster(service, wiring.routes)
            consumers = [consumer(route) for route in wiring.routes]
            async with AsyncExitStack() as chores:
                for chore in wiring.background:
                    await chores.enter_async_context(chore)
                async with consuming(consumers, settings.shutdown_grace_seconds, halts):
                    yield

    async def nats_ready() -> bool:
        return bus.is_connected

    return worker_app(lifespan, {"nats": nats_ready, **(checks or {}), "consumers": halts})


def run_worker(service: ServiceSpec, settings: S, create_app: Callable[[S], Starlette]) -> None:
    """``python -m`` a worker: logs and traces named after the service, then its app served on
    ``HEALTH_PORT`` until SIGTERM."""
    configure_logging(service.name, settings.log_level, settings.log_format)
    configure_tracing(service.name)  # before the app is built: the consumers look at what it set up
    serve(create_app(settings), settings.health_host, settings.health_port, settings.log_level)


def _check_roster(service: ServiceSpec, routes: Sequence[Route[Any]]) -> None:
    # The manifest tests hold KEDA's triggers to the roster's consumers, and the fault suite reports on
    # them: a consumer the roster does not list would run unscaled and unwatched.
    running = sorted(route.spec.durable for route in routes)
    listed = sorted(spec.durable for spec in service.consumers)
    if running != listed:
        raise ValueError(
            f"{service.name} would run the consumers {running}, but contracts/roster.py lists {listed} for it"
        )


def fail_request_on_give_up(publisher: EventPublisher, stage: FailureStage) -> GiveUpHook:
    """What every stage does when it gives up on a message: publish ``plan.failed`` for the
    message's request (when it names one), so the persister ends it with a reason."""

    async def hook(msg: Msg, exc: GiveUp) -> None:
        request_id = _request_id_of(msg)
        if request_id is None:
            log.error("dropping a message that names no request on %s: %s", msg.subject, reason(exc))
            return
        await publisher.publish(PlanFailed(request_id=request_id, stage=stage, reason=exc.reason, detail=exc.detail))

    return hook


def _request_id_of(msg: Msg) -> UUID | None:
    # Read tolerantly: the message may have failed precisely because it does not parse.
    try:
        return UUID(str(json.loads(msg.data)["request_id"]))
    except (ValueError, KeyError, TypeError):
        return None
