"""Composition root of the planner: the only place that reads settings and builds clients."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from nats.aio.msg import Msg
from pydantic import ValidationError
from starlette.applications import Starlette

from contracts import streams
from contracts.events import PlanCancelled, PlanRequested
from contracts.plan import PlanSkeleton, TrainingWeek, WorkoutPlan
from contracts.subjects import PLAN_CANCELLED
from service_runtime.bus import EventBus
from service_runtime.consumer import LeasedConsumer, NoneHalted, consuming
from service_runtime.failures import fail_request_on_give_up
from service_runtime.health import worker_app
from service_runtime.llm import StructuredCalls, build_openai_client, check_llm_setup
from service_runtime.llm.chat import ChatCompletions
from service_runtime.llm.metering import LlmMeter
from service_runtime.llm.responses import BackgroundResponses
from services.planner.cancellation import Cancellations
from services.planner.planning import Planning, PlanWriter, PromptPolicy
from services.planner.settings import PlannerSettings
from services.planner.single import SingleCall
from services.planner.skeleton_weeks import SkeletonThenWeeks
from services.planner.state import PlannerState

log = logging.getLogger(__name__)


def create_app(settings: PlannerSettings | None = None) -> Starlette:
    settings = settings or PlannerSettings()  # read from the environment
    check_llm_setup(
        settings.model, [PlanSkeleton, TrainingWeek] if settings.generation == "parallel" else [WorkoutPlan]
    )
    halts = NoneHalted()
    bus = EventBus(
        settings.nats_url,
        client_name="planner",
        publish_timeout_seconds=settings.publish_timeout_seconds,
        replicas=settings.stream_replicas,
    )

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with build_openai_client(settings) as client, bus:
            state = await PlannerState.open(bus.jetstream, replicas=bus.replicas)
            meter = LlmMeter("planner", settings.llm_prices, ledger=bus, model=settings.model)
            # Two independent choices, two seams: how a call is made (the adapter) ...
            calls: StructuredCalls
            if settings.llm_mode == "responses_background":
                calls = BackgroundResponses(
                    client,
                    state.responses,
                    model=settings.model,
                    deadline_seconds=settings.llm_deadline_seconds,
                    poll_interval_seconds=settings.poll_interval_seconds,
                    max_concurrent_polls=settings.max_concurrent_polls,
                    store=settings.responses_store,
                    meter=meter,
                )
            else:
                calls = ChatCompletions(
                    client,
                    model=settings.model,
                    deadline_seconds=settings.llm_deadline_seconds,
                    stream=settings.stream,
                    meter=meter,
                )
            # ... and how a plan is split (the strategy).
            writer: PlanWriter
            if settings.generation == "parallel":
                writer = SkeletonThenWeeks(
                    calls,
                    state.parts,
                    bus,
                    tries=settings.reply_attempts,
                    max_concurrent_calls=settings.concurrent_calls_limit,
                    known=state.known,
                )
            else:
                writer = SingleCall(calls, tries=settings.reply_attempts)
            policy = PromptPolicy(settings.max_system_prompt_chars, settings.allow_system_prompt_override)
            cancellations = Cancellations(state.cancelled)
            planning = Planning(writer, state.plans, bus, progress=bus, cancellations=cancellations, policy=policy)

            async def heard_cancel(message: Msg) -> None:
                # Every replica hears each cancel as it is published and stops its own plan at once.
                try:
                    cancellations.heard(PlanCancelled.model_validate_json(message.data).request_id)
                except ValidationError:
                    log.warning("ignoring an unreadable %s message", PLAN_CANCELLED)

            broadcast = await bus.broker.connection.subscribe(PLAN_CANCELLED, cb=heard_cancel)
            plans = LeasedConsumer(
                bus.jetstream,
                settings.consumer(streams.PLANNER),
                PlanRequested,
                planning.plan_requested,
                max_in_flight=settings.in_flight_limit,
                on_give_up=fail_request_on_give_up(bus, "planner"),
            )
            cancels = LeasedConsumer(
                bus.jetstream,
                settings.consumer(streams.PLANNER_CANCELLATIONS),
                PlanCancelled,
                planning.plan_cancelled,
                max_in_flight=16,
            )
            try:
                async with consuming([plans, cancels], settings.shutdown_grace_seconds, halts):
                    yield
            finally:
                await broadcast.unsubscribe()

    async def nats_ready() -> bool:
        return bus.is_connected

    return worker_app(lifespan, {"nats": nats_ready, "consumers": halts})
