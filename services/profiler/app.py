"""Composition root of the profiler: the only place that reads settings and builds clients."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette

from contracts import streams
from contracts.events import ExerciseProfileNeeded
from contracts.plan import ExerciseProfile
from service_runtime.bus import EventBus
from service_runtime.consumer import LeasedConsumer, NoneHalted, consuming
from service_runtime.failures import fail_request_on_give_up
from service_runtime.health import worker_app
from service_runtime.llm import build_openai_client, check_llm_setup
from service_runtime.metering import LlmMeter
from services.profiler.cache import KeyValueProfileCache
from services.profiler.llm import OpenAIProfileWriter
from services.profiler.profiles import Profiling
from services.profiler.settings import ProfilerSettings


def create_app(settings: ProfilerSettings | None = None) -> Starlette:
    settings = settings or ProfilerSettings()  # read from the environment
    check_llm_setup(settings.model, [ExerciseProfile])
    halts = NoneHalted()
    bus = EventBus(
        settings.nats_url,
        client_name="profiler",
        publish_timeout_seconds=settings.publish_timeout_seconds,
        replicas=settings.stream_replicas,
    )

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with build_openai_client(settings) as client, bus:
            writer = OpenAIProfileWriter(
                client,
                model=settings.model,
                deadline_seconds=settings.llm_deadline_seconds,
                attempts=settings.reply_attempts,
                meter=LlmMeter("profiler", settings.llm_prices, ledger=bus, model=settings.model),
            )
            cache = await KeyValueProfileCache.open(bus.jetstream, settings.claim_ttl_seconds, replicas=bus.replicas)
            profiling = Profiling(
                writer,
                cache,
                bus,
                # Long enough for the holder's whole call, plus its claim expiring if it died.
                wait_for_other_seconds=settings.llm_deadline_seconds + settings.claim_ttl_seconds,
                claim_refresh_seconds=settings.claim_ttl_seconds / 3,
            )
            consumer = LeasedConsumer(
                bus.jetstream,
                settings.consumer(streams.PROFILER),
                ExerciseProfileNeeded,
                profiling.profile_needed,
                max_in_flight=settings.max_in_flight,
                on_give_up=fail_request_on_give_up(bus, "profiler"),
            )
            async with consuming([consumer], settings.shutdown_grace_seconds, halts):
                yield

    async def nats_ready() -> bool:
        return bus.is_connected

    return worker_app(lifespan, {"nats": nats_ready, "consumers": halts})
