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
from service_runtime.llm import build_openai_client, check_llm_setup
from service_runtime.metering import LlmMeter
from services.planner.background import BackgroundCalls, BackgroundPlanWriter
from services.planner.cancellation import Cancellations, KeyValueCancelledMarks
from services.planner.drafts import KeyValueDraftStore, KeyValuePartStore
from services.planner.known_exercises import KeyValueKnownExercises
from services.planner.llm import OpenAIPlanWriter
from services.planner.parallel import ParallelPlanWriter
from services.planner.planning import Planning, PlanWriter, PromptPolicy
from services.planner.response_ids import KeyValueResponseIds
from services.planner.settings import PlannerSettings

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
            meter = LlmMeter("planner", settings.llm_prices, ledger=bus, model=settings.model)
            writer: PlanWriter
            background = None
            if settings.llm_mode == "responses_background":
                background = BackgroundCalls(
                    client,
                    await KeyValueResponseIds.open(bus.jetstream, replicas=bus.replicas),
                    model=settings.model,
                    deadline_seconds=settings.llm_deadline_seconds,
                    attempts=settings.reply_attempts,
                    poll_interval_seconds=settings.poll_interval_seconds,
                    max_concurrent_polls=settings.max_concurrent_polls,
                    store=settings.responses_store,
                    meter=meter,
                )
            if settings.generation == "parallel":
                writer = ParallelPlanWriter(
                    client,
                    await KeyValuePartStore.open(bus.jetstream, replicas=bus.replicas),
                    bus,
                    model=settings.model,
                    deadline_seconds=settings.llm_deadline_seconds,
                    attempts=settings.reply_attempts,
                    stream=settings.stream,
                    max_concurrent_calls=settings.concurrent_calls_limit,
                    meter=meter,
                    known=await KeyValueKnownExercises.open(bus.jetstream, replicas=bus.replicas),
                    background=background,
                )
            elif background is not None:
                writer = BackgroundPlanWriter(background)
            else:
                writer = OpenAIPlanWriter(
                    client,
                    model=settings.model,
                    deadline_seconds=settings.llm_deadline_seconds,
                    attempts=settings.reply_attempts,
                    stream=settings.stream,
                    meter=meter,
                )
            policy = PromptPolicy(settings.max_system_prompt_chars, settings.allow_system_prompt_override)
            cancellations = Cancellations(await KeyValueCancelledMarks.open(bus.jetstream, replicas=bus.replicas))
            planning = Planning(
                writer,
                await KeyValueDraftStore.open(bus.jetstream, replicas=bus.replicas),
                bus,
                progress=bus,
                cancellations=cancellations,
                policy=policy,
                quality_attempts=settings.reply_attempts,
            )

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
