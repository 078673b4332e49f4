"""Composition root of the persister: the only place that reads settings and builds clients."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from starlette.applications import Starlette

from contracts import streams
from contracts.events import ExerciseProfiled, LlmCallRecorded, PlanFailed, PlanGenerated
from service_runtime.bus import EventBus
from service_runtime.consumer import LeasedConsumer, consuming
from service_runtime.failures import fail_request_on_give_up
from service_runtime.health import worker_app
from service_runtime.metrics import watch_pool
from service_runtime.periodic import every
from services.persister.ledger import PostgresLedger
from services.persister.plans import Persisting
from services.persister.postgres import PostgresPlanStore, create_pool
from services.persister.settings import PersisterSettings
from services.persister.sweeper import Sweeper, SweepPolicy


def create_app(settings: PersisterSettings | None = None) -> Starlette:
    settings = settings or PersisterSettings()  # read from the environment
    bus = EventBus(
        settings.nats_url,
        client_name="persister",
        publish_timeout_seconds=settings.publish_timeout_seconds,
        replicas=settings.stream_replicas,
    )
    pool: asyncpg.Pool | None = None

    @asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        nonlocal pool
        pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
        watch_pool(pool)
        async with pool, bus:
            persisting = Persisting(PostgresPlanStore(pool), bus, progress=bus)
            give_up = fail_request_on_give_up(bus, "persister")
            consumers: list[LeasedConsumer[Any]] = [
                LeasedConsumer(
                    bus.jetstream,
                    settings.consumer(streams.PERSISTER_PLANS),
                    PlanGenerated,
                    persisting.plan_generated,
                    max_in_flight=settings.max_in_flight,
                    on_give_up=give_up,
                ),
                LeasedConsumer(
                    bus.jetstream,
                    settings.consumer(streams.PERSISTER_PROFILES),
                    ExerciseProfiled,
                    persisting.exercise_profiled,
                    max_in_flight=settings.max_in_flight,
                    on_give_up=give_up,
                ),
                # A ledger row that cannot be written is an accounting gap, not a reason to fail a plan.
                LeasedConsumer(
                    bus.jetstream,
                    settings.consumer(streams.PERSISTER_LEDGER),
                    LlmCallRecorded,
                    PostgresLedger(pool).record,
                    max_in_flight=settings.max_in_flight,
                ),
                # No give-up hook: a failure that cannot be recorded must not loop through plan.failed.
                LeasedConsumer(
                    bus.jetstream,
                    settings.consumer(streams.PERSISTER_FAILURES),
                    PlanFailed,
                    persisting.plan_failed,
                    max_in_flight=settings.max_in_flight,
                ),
            ]
            sweeper = Sweeper(pool, bus, SweepPolicy(settings.stall_seconds, settings.deadline_seconds))
            async with (
                consuming(consumers, settings.shutdown_grace_seconds),
                every(settings.sweep_interval_seconds, sweeper.sweep_once, name="sweeper"),
            ):
                yield

    async def nats_ready() -> bool:
        return bus.is_connected

    async def postgres_ready() -> bool:
        return pool is not None and await pool.fetchval("SELECT 1") == 1

    return worker_app(lifespan, {"nats": nats_ready, "postgres": postgres_ready})
