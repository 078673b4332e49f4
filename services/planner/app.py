"""Composition root of the planner: the only place that reads settings and builds clients."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pydantic
from nats.aio.msg import Msg
from openai import AsyncOpenAI
from pydantic import ValidationError
from starlette.applications import Starlette

from contracts import roster, streams
from contracts.events import PlanCancelled, PlanRequested, WeekRequested
from contracts.plan import PlanOutline, PlanOverview, PlanSkeleton, TrainingDay, TrainingWeek, WorkoutPlan
from contracts.subjects import PLAN_CANCELLED
from service_runtime.bus import EventBus
from service_runtime.llm import StructuredCalls, build_openai_client, check_llm_setup, warn_if_unknown_model
from service_runtime.llm.admission import admitted, open_budgets
from service_runtime.llm.budget import Budgets
from service_runtime.llm.chat import ChatCompletions
from service_runtime.llm.fallback import WithFallback
from service_runtime.llm.metering import LlmMeter
from service_runtime.llm.responses import BackgroundResponses
from service_runtime.worker import Route, Wiring, create_worker
from services.planner.cancellation import Cancellations
from services.planner.experiment import Experiment, Variant
from services.planner.parts import PartWriter
from services.planner.planning import Planning, PlanWriter, PromptPolicy
from services.planner.progressive import ProgressiveWeeks
from services.planner.regeneration import WeekRewriting
from services.planner.settings import PlannerSettings
from services.planner.single import SingleCall
from services.planner.skeleton_weeks import SkeletonThenWeeks
from services.planner.state import PlannerState

log = logging.getLogger(__name__)


def _reply_types(generation: str) -> list[type[pydantic.BaseModel]]:
    """What the strategy asks the model to write: each schema is checked against the provider's subset at start."""
    if generation == "parallel":
        return [PlanSkeleton, TrainingWeek]
    if generation == "progressive":
        return [PlanOutline, PlanOverview, TrainingDay]
    return [WorkoutPlan]


def create_app(settings: PlannerSettings | None = None) -> Starlette:
    settings = settings or PlannerSettings()  # read from the environment
    variants = settings.variants
    replies = {reply for generation in {v.generation for v in variants} for reply in _reply_types(generation)}
    check_llm_setup([*replies, TrainingWeek])  # a week written again is one TrainingWeek, whatever the strategy

    @asynccontextmanager
    async def wiring(bus: EventBus) -> AsyncIterator[Wiring]:
        for variant in variants:  # here: logging is set up by now
            warn_if_unknown_model(variant.model, "PLANNER_EXPERIMENT" if settings.experiment else "PLANNER_MODEL")
        if settings.fallback_model is not None:
            warn_if_unknown_model(settings.fallback_model, "PLANNER_FALLBACK_MODEL")
        async with build_openai_client(settings) as client:
            state = await PlannerState.open(bus.jetstream, replicas=bus.replicas)
            budgets = await open_budgets(settings, bus.jetstream, replicas=bus.replicas)
            writers = [
                (variant, _writer(settings, variant, client, state, bus, budgets=budgets)) for variant in variants
            ]
            writer = writers[0][1] if settings.experiment is None else Experiment(writers)
            policy = PromptPolicy(settings.max_system_prompt_chars, settings.allow_system_prompt_override)
            cancellations = Cancellations(state.cancelled)
            planning = Planning(writer, state.plans, bus, progress=bus, cancellations=cancellations, policy=policy)
            # Weeks written again: the first variant's model and call adapter, one call per week.
            rewriting = WeekRewriting(
                PartWriter(
                    _calls(settings, variants[0].model, client, state, bus, budgets=budgets),
                    state.parts,
                    max_concurrent_calls=settings.concurrent_calls_limit,
                ),
                bus,
                progress=bus,
                cancellations=cancellations,
                policy=policy,
                tries=settings.reply_attempts,
            )

            async def plan_cancelled(event: PlanCancelled) -> None:
                await planning.plan_cancelled(event)
                await rewriting.abandon(event.request_id)

            yield Wiring(
                [
                    Route(streams.PLANNER, PlanRequested, planning.plan_requested),
                    # Marking a cancel is cheap; one that cannot be marked is not worth failing a plan.
                    Route(streams.PLANNER_WEEKS, WeekRequested, rewriting.week_requested, max_in_flight=8),
                    Route(
                        streams.PLANNER_CANCELLATIONS,
                        PlanCancelled,
                        plan_cancelled,
                        max_in_flight=16,
                        fails_request=False,
                    ),
                ],
                background=[_hearing_cancels(bus, cancellations)],
            )

    return create_worker(roster.PLANNER, settings, wiring, max_in_flight=settings.in_flight_limit)


@asynccontextmanager
async def _hearing_cancels(bus: EventBus, cancellations: Cancellations) -> AsyncIterator[None]:
    """Every replica hears each cancel as it is published (a plain subscription, not the durable
    consumer) and stops its own plan for that request at once."""

    async def heard(message: Msg) -> None:
        try:
            cancellations.heard(PlanCancelled.model_validate_json(message.data).request_id)
        except ValidationError:
            log.warning("ignoring an unreadable %s message", PLAN_CANCELLED)

    subscription = await bus.broker.connection.subscribe(PLAN_CANCELLED, cb=heard)
    try:
        yield
    finally:
        await subscription.unsubscribe()


def _writer(
    settings: PlannerSettings,
    variant: Variant,
    client: AsyncOpenAI,
    state: PlannerState,
    bus: EventBus,
    *,
    budgets: Budgets | None,
) -> PlanWriter:
    """A plan writer: how a call is made (the adapter, for the variant's model) and how a plan is
    split (its strategy)."""
    generation = variant.generation
    calls = _calls(settings, variant.model, client, state, bus, budgets=budgets)
    if generation == "parallel":
        return SkeletonThenWeeks(
            calls,
            state.parts,
            bus,
            tries=settings.reply_attempts,
            max_concurrent_calls=settings.concurrent_calls_limit,
            known=state.known,
            warmup_seconds=settings.prefix_warmup_seconds,
        )
    if generation == "progressive":
        return ProgressiveWeeks(
            calls,
            state.parts,
            bus,
            tries=settings.reply_attempts,
            max_concurrent_calls=settings.concurrent_calls_limit,
            exercises_per_call=settings.exercises_per_call,
            first_week_exercises_per_call=settings.first_week_exercises_per_call,
            known=state.known,
            warmup_seconds=settings.prefix_warmup_seconds,
        )
    return SingleCall(calls, tries=settings.reply_attempts)


def _calls(
    settings: PlannerSettings,
    model: str,
    client: AsyncOpenAI,
    state: PlannerState,
    bus: EventBus,
    *,
    budgets: Budgets | None,
) -> StructuredCalls:
    """How a call to ``model`` is made: the configured adapter, metered onto the ledger, behind the
    shared budget and the lanes' tiers; with ``PLANNER_FALLBACK_MODEL``, made again on that model
    (its own adapter, meter and shared budget) when the provider fails it."""
    primary = admitted(_adapter(settings, model, client, state, bus), settings, budgets, stage="planner")
    if settings.fallback_model is None or settings.fallback_model == model:
        return primary
    fallback = admitted(
        _adapter(settings, settings.fallback_model, client, state, bus), settings, budgets, stage="planner"
    )
    return WithFallback(primary, fallback, stage="planner")


def _adapter(
    settings: PlannerSettings, model: str, client: AsyncOpenAI, state: PlannerState, bus: EventBus
) -> StructuredCalls:
    meter = LlmMeter("planner", settings.llm_prices, ledger=bus, model=model)
    if settings.llm_mode == "responses_background":
        return BackgroundResponses(
            client,
            state.responses,
            model=model,
            deadline_seconds=settings.llm_deadline_seconds,
            poll_interval_seconds=settings.poll_interval_seconds,
            queued_seconds=settings.queued_seconds,
            max_concurrent_polls=settings.max_concurrent_polls,
            store=settings.responses_store,
            meter=meter,
        )
    return ChatCompletions(
        client,
        model=model,
        deadline_seconds=settings.llm_deadline_seconds,
        first_token_seconds=settings.llm_first_token_seconds,
        stream=settings.stream,
        meter=meter,
    )
