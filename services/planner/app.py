"""Composition root of the planner: the only place that reads settings and builds clients."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from contracts import streams
from contracts.events import PlanRequested
from service_runtime.bus import EventBus
from service_runtime.consumer import LeasedConsumer, consuming
from service_runtime.failures import fail_request_on_give_up
from service_runtime.health import worker_app
from service_runtime.llm import build_openai_client
from services.planner.background import BackgroundPlanWriter
from services.planner.drafts import KeyValueDraftStore
from services.planner.llm import OpenAIPlanWriter
from services.planner.planning import Planning, PlanWriter, PromptPolicy
from services.planner.response_ids import KeyValueResponseIds
from services.planner.settings import PlannerSettings


def create_app(settings: PlannerSettings | None = None) -> Starlette:
    settings = settings or PlannerSettings()  # read from the environment
    bus = EventBus(settings.nats_url, client_name="planner", publish_timeout_seconds=settings.publish_timeout_seconds)

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with build_openai_client(settings) as client, bus:
            writer: PlanWriter
            if settings.llm_mode == "responses_background":
                writer = BackgroundPlanWriter(
                    client,
                    await KeyValueResponseIds.open(bus.jetstream),
                    model=settings.model,
                    deadline_seconds=settings.llm_deadline_seconds,
                    attempts=settings.reply_attempts,
                    poll_interval_seconds=settings.poll_interval_seconds,
                )
            else:
                writer = OpenAIPlanWriter(
                    client,
                    model=settings.model,
                    deadline_seconds=settings.llm_deadline_seconds,
                    attempts=settings.reply_attempts,
                    stream=settings.stream,
                )
            policy = PromptPolicy(settings.max_system_prompt_chars, settings.allow_system_prompt_override)
            planning = Planning(writer, await KeyValueDraftStore.open(bus.jetstream), bus, policy)
            consumer = LeasedConsumer(
                bus.jetstream,
                settings.consumer(streams.PLANNER),
                PlanRequested,
                planning.plan_requested,
                max_in_flight=settings.in_flight_limit,
                on_give_up=fail_request_on_give_up(bus, "planner"),
            )
            async with consuming([consumer], settings.shutdown_grace_seconds):
                yield

    async def nats_ready() -> bool:
        return bus.is_connected

    return worker_app(lifespan, {"nats": nats_ready})
