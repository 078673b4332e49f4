"""Composition root of the persister: the only place that reads settings and builds clients."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from starlette.applications import Starlette

from contracts import roster, streams
from contracts.events import (
    ExerciseProfiled,
    LlmCallRecorded,
    PlanAwaitingReview,
    PlanCancelled,
    PlanFailed,
    TrustedPlanGenerated,
    WeekGenerated,
)
from service_runtime.bus import EventBus
from service_runtime.metrics import watch_pool
from service_runtime.periodic import every
from service_runtime.worker import Route, Wiring, create_worker
from services.persister.ledger import PostgresLedger
from services.persister.plans import Persisting
from services.persister.postgres import PostgresPlanStore, create_pool
from services.persister.settings import PersisterSettings
from services.persister.sweeper import Sweeper, SweepPolicy


def create_app(settings: PersisterSettings | None = None) -> Starlette:
    settings = settings or PersisterSettings()  # read from the environment
    pool: asyncpg.Pool | None = None

    @asynccontextmanager
    async def wiring(bus: EventBus) -> AsyncIterator[Wiring]:
        nonlocal pool
        pool = await create_pool(settings.database_url, settings.db_pool_min, settings.db_pool_max)
        watch_pool(pool)
        async with pool:
            store = PostgresPlanStore(
                pool,
                plan_writers=settings.plan_writers,
                max_plans_per_write=settings.plans_per_write,
                linger_seconds=settings.plan_linger_seconds,
            )
            persisting = Persisting(store, bus, progress=bus)
            sweeper = Sweeper(pool, bus, SweepPolicy(settings.stall_seconds, settings.deadline_seconds))
            yield Wiring(
                [
                    Route(streams.PERSISTER_PLANS, TrustedPlanGenerated, persisting.plan_generated),
                    Route(streams.PERSISTER_PROFILES, ExerciseProfiled, persisting.exercise_profiled),
                    Route(streams.PERSISTER_WEEKS, WeekGenerated, persisting.week_generated),
                    Route(streams.PERSISTER_REVIEWS, PlanAwaitingReview, persisting.plan_awaiting_review),
                    # A ledger row that cannot be written is an accounting gap, not a reason to fail a plan.
                    Route(streams.PERSISTER_LEDGER, LlmCallRecorded, PostgresLedger(pool).record, fails_request=False),
                    # A failure that cannot be recorded must not loop through plan.failed.
                    Route(streams.PERSISTER_FAILURES, PlanFailed, persisting.plan_failed, fails_request=False),
                    # The request already ended cancelled: nothing left to fail.
                    Route(
                        streams.PERSISTER_CANCELLATIONS, PlanCancelled, persisting.plan_cancelled, fails_request=False
                    ),
                ],
                background=[every(settings.sweep_interval_seconds, sweeper.sweep_once, name="sweeper")],
            )

    async def postgres_ready() -> bool:
        return pool is not None and await pool.fetchval("SELECT 1") == 1

    return create_worker(
        roster.PERSISTER, settings, wiring, max_in_flight=settings.max_in_flight, checks={"postgres": postgres_ready}
    )
