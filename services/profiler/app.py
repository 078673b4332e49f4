"""Composition root of the profiler: the only place that reads settings and builds clients."""

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

from openai import AsyncOpenAI
from starlette.applications import Starlette

from contracts import roster, streams
from contracts.events import ExerciseProfileNeeded
from contracts.plan import ExerciseProfile
from service_runtime.bus import EventBus
from service_runtime.llm import StructuredCalls, build_openai_client, check_llm_setup, warn_if_unknown_model
from service_runtime.llm.admission import admitted, open_budgets
from service_runtime.llm.budget import Budgets
from service_runtime.llm.chat import ChatCompletions
from service_runtime.llm.fallback import WithFallback
from service_runtime.llm.metering import LlmMeter
from service_runtime.llm.openai_batch import OpenAiBatches
from service_runtime.worker import Route, Wiring, create_worker
from services.profiler.cache import KeyValueProfileCache
from services.profiler.llm import LlmProfileWriter
from services.profiler.prefill import Prefill, PrefillReport
from services.profiler.profiles import Profiling
from services.profiler.settings import ProfilerSettings


def create_app(settings: ProfilerSettings | None = None) -> Starlette:
    settings = settings or ProfilerSettings()  # read from the environment
    check_llm_setup([ExerciseProfile])

    @asynccontextmanager
    async def wiring(bus: EventBus) -> AsyncIterator[Wiring]:
        warn_if_unknown_model(settings.model, "PROFILER_MODEL")  # here: logging is set up by now
        if settings.fallback_model is not None:
            warn_if_unknown_model(settings.fallback_model, "PROFILER_FALLBACK_MODEL")
        async with build_openai_client(settings) as client:
            budgets = await open_budgets(settings, bus.jetstream, replicas=bus.replicas)
            writer = LlmProfileWriter(_calls(settings, client, bus, budgets), tries=settings.reply_attempts)
            cache = await KeyValueProfileCache.open(bus.jetstream, settings.claim_ttl_seconds, replicas=bus.replicas)
            profiling = Profiling(
                writer,
                cache,
                bus,
                # Long enough for the holder's whole call (made again on the fallback model, if set,
                # after the primary's deadline), plus its claim expiring if it died.
                wait_for_other_seconds=settings.llm_deadline_seconds * (2 if settings.fallback_model else 1)
                + settings.claim_ttl_seconds,
                claim_refresh_seconds=settings.claim_ttl_seconds / 3,
            )
            yield Wiring([Route(streams.PROFILER, ExerciseProfileNeeded, profiling.profile_needed)])

    return create_worker(roster.PROFILER, settings, wiring, max_in_flight=settings.max_in_flight)


async def prefill_catalogue(names: Iterable[str], settings: ProfilerSettings | None = None) -> PrefillReport:
    """``python -m services.profiler prefill``: profile the exercises the cache lacks in one batch
    through the Batch API (no shared budget: the Batch API has its own limits), metered at the
    ``batch`` tier."""
    settings = settings or ProfilerSettings()  # read from the environment
    check_llm_setup([ExerciseProfile])
    warn_if_unknown_model(settings.model, "PROFILER_MODEL")
    bus = EventBus(
        settings.nats_url,
        client_name="profiler-prefill",
        publish_timeout_seconds=settings.publish_timeout_seconds,
        replicas=settings.stream_replicas,
    )
    async with bus, build_openai_client(settings) as client:
        cache = await KeyValueProfileCache.open(bus.jetstream, settings.claim_ttl_seconds, replicas=bus.replicas)
        batches = OpenAiBatches(
            client,
            model=settings.model,
            poll_seconds=settings.batch_poll_seconds,
            meter=LlmMeter("profiler", settings.llm_prices, ledger=bus, model=settings.model),
        )
        return await Prefill(batches, cache, bus).run(names)


def _calls(settings: ProfilerSettings, client: AsyncOpenAI, bus: EventBus, budgets: Budgets | None) -> StructuredCalls:
    """A non-streamed chat call per profile (short replies), metered onto the ledger, behind the
    shared budget and the lanes' tiers; with ``PROFILER_FALLBACK_MODEL``, made again on that model
    (its own meter and shared budget) when the provider fails it."""

    def calls_to(model: str) -> StructuredCalls:
        adapter = ChatCompletions(
            client,
            model=model,
            deadline_seconds=settings.llm_deadline_seconds,
            first_token_seconds=settings.llm_first_token_seconds,  # not applied: the call is not streamed
            stream=False,
            meter=LlmMeter("profiler", settings.llm_prices, ledger=bus, model=model),
        )
        return admitted(adapter, settings, budgets, stage="profiler")

    primary = calls_to(settings.model)
    if settings.fallback_model is None or settings.fallback_model == settings.model:
        return primary
    return WithFallback(primary, calls_to(settings.fallback_model), stage="profiler")
