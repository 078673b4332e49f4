"""The planner's strategies over the structured-call port, against the in-memory fake (no simulator).

``ScriptedCalls`` answers each paid call: a skeleton, a week (by the number in its key) or a whole
plan, written by the simulator's plan generator for one profile. With ``reattach=True`` it behaves
like background responses (a call outlives its caller and is re-attached to), without it like
streamed chat.
"""

import asyncio
import json
import random
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pydantic
import pytest

from contracts.events import LlmCallRecorded, LlmUsage, PlanGenerated, PlanRequested
from contracts.plan import PLAN_WEEKS, PlanSkeleton, TrainingWeek
from llm_simulator.intent import read_intent
from llm_simulator.plans import skeleton_of, write_plan
from service_runtime.llm import InvalidReply, Prompt, StructuredReply
from service_runtime.llm.fake import ScriptedCalls
from service_runtime.llm.metering import LlmMeter
from service_runtime.logs import bind_request_id
from service_runtime.outcomes import GiveUp, RetryLater
from services.planner.cancellation import Cancellations
from services.planner.planning import Planning, PlanPrompt, PromptPolicy
from services.planner.single import SingleCall
from services.planner.skeleton_weeks import PARTS, SkeletonThenWeeks
from tests.fakes import InMemoryCancelledMarks, InMemoryGeneratedPlans, InMemoryParts, RecordingPublisher

PROFILE = "I want to build muscle, 3x per week, I have a full gym"
INTENT = read_intent(PROFILE, "")
PLAN = write_plan(INTENT, random.Random(3))
SKELETON = skeleton_of(PLAN, INTENT)
PROMPT = PlanPrompt(["Our rules."], PROFILE)
ReplyT = TypeVar("ReplyT", bound=pydantic.BaseModel)


def written(key: str, reply_type: type[Any]) -> pydantic.BaseModel:
    """What a well-behaved model writes for the call under ``key``."""
    if reply_type is PlanSkeleton:
        return SKELETON
    if reply_type is TrainingWeek:
        return PLAN.weeks[int(key.rsplit("week", 1)[1]) - 1]
    return PLAN


def answering(
    overrides: dict[str, list[Any]] | None = None, gates: dict[str, asyncio.Event] | None = None
) -> Callable[[str, Prompt, type[Any]], Awaitable[Any]]:
    """Answers by key: ``overrides[part]`` in turn first (a reply or an exception), then the good
    reply; a call whose part has a gate waits for it (a call still being written)."""
    overrides = overrides or {}
    gates = gates or {}

    async def answer(key: str, prompt: Prompt, reply_type: type[Any]) -> Any:
        part = key.split(".", 1)[1] if "." in key else key
        if (gate := gates.get(part)) is not None:
            await gate.wait()
        if overrides.get(part):
            return overrides[part].pop(0)
        return written(key, reply_type)

    return answer


def parallel(calls: ScriptedCalls, parts: InMemoryParts | None = None) -> SkeletonThenWeeks:
    return SkeletonThenWeeks(calls, parts or InMemoryParts(), RecordingPublisher(), tries=2, max_concurrent_calls=16)


def parts_paid(calls: ScriptedCalls) -> list[str]:
    return sorted(key.split(".", 1)[1] for key in calls.paid)


async def test_single_call_writes_the_checked_plan_with_one_paid_call() -> None:
    calls = ScriptedCalls(answering())
    request_id = uuid.uuid4()

    checked = await SingleCall(calls, tries=2).write(request_id, PROMPT)

    assert checked.plan == PLAN
    assert calls.paid == [str(request_id)]
    assert checked.usage.calls == 1


async def test_skeleton_then_weeks_pays_for_nine_parts_and_assembles_the_plan() -> None:
    calls = ScriptedCalls(answering())

    checked = await parallel(calls).write(uuid.uuid4(), PROMPT)

    assert [week.week for week in checked.plan.weeks] == list(range(1, PLAN_WEEKS + 1))
    assert checked.plan.weeks == PLAN.weeks
    assert parts_paid(calls) == sorted(PARTS)
    assert checked.usage.calls == 1 + PLAN_WEEKS


@pytest.mark.parametrize("reattach", [False, True], ids=["chat", "background"])
async def test_a_crash_mid_weeks_rebuys_only_what_cannot_be_recovered(reattach: bool) -> None:
    late = {f"week{n}": asyncio.Event() for n in range(5, PLAN_WEEKS + 1)}
    calls = ScriptedCalls(answering(gates=late), reattach=reattach)
    parts, request_id = InMemoryParts(), uuid.uuid4()

    first = asyncio.create_task(parallel(calls, parts).write(request_id, PROMPT))
    while len(parts.kept) < 5:  # the skeleton and weeks 1-4 are finished and kept
        await asyncio.sleep(0.01)
    first.cancel()  # the planner dies while weeks 5-8 are being written
    with pytest.raises(asyncio.CancelledError):
        await first
    for gate in late.values():
        gate.set()

    checked = await parallel(calls, parts).write(request_id, PROMPT)

    assert checked.plan.weeks == PLAN.weeks
    unfinished = [f"week{n}" for n in range(5, PLAN_WEEKS + 1)]
    # Streamed chat calls die with their connection and are bought again; background responses
    # are re-attached to. Finished parts are never bought twice.
    expected = sorted([*PARTS, *unfinished]) if not reattach else sorted(PARTS)
    assert parts_paid(calls) == expected


async def test_a_week_failing_its_checks_is_written_again_and_nothing_else_is() -> None:
    wrong_number = PLAN.weeks[3].model_copy(update={"week": 4})  # asked for week 3
    calls = ScriptedCalls(answering({"week3": [wrong_number]}))

    checked = await parallel(calls).write(uuid.uuid4(), PROMPT)

    assert checked.plan.weeks[2] == PLAN.weeks[2]
    assert parts_paid(calls) == sorted([*PARTS, "week3"])
    assert [key.split(".", 1)[1] for key in calls.forgotten] == ["week3"]


async def test_a_week_whose_replies_stay_unusable_asks_for_a_redelivery_and_keeps_the_rest() -> None:
    calls = ScriptedCalls(answering({"week6": [InvalidReply("truncated"), InvalidReply("truncated")]}))
    parts, request_id = InMemoryParts(), uuid.uuid4()

    with pytest.raises(RetryLater) as raised:
        await parallel(calls, parts).write(request_id, PROMPT)
    assert raised.value.reason == "invalid_llm_reply"
    assert sorted(part for _, part in parts.kept) == sorted(set(PARTS) - {"week6"})

    await parallel(calls, parts).write(request_id, PROMPT)
    assert parts_paid(calls) == sorted([*PARTS, "week6", "week6"])


async def test_a_skeleton_that_stays_off_the_profile_ends_the_request_with_plan_quality() -> None:
    four_days = SKELETON.model_copy(update={"days_per_week": 4})
    calls = ScriptedCalls(answering({"skeleton": [four_days] * 3}))

    with pytest.raises(GiveUp) as raised:
        await parallel(calls).write(uuid.uuid4(), PROMPT)

    assert raised.value.reason == "plan_quality"
    assert parts_paid(calls) == ["skeleton"] * 3  # tries + 1, then no week is bought


async def test_a_cancel_mid_plan_drops_it_and_abandons_every_part_at_the_provider() -> None:
    hold = asyncio.Event()
    calls = ScriptedCalls(answering(gates={f"week{n}": hold for n in range(1, PLAN_WEEKS + 1)}), reattach=True)
    publisher = RecordingPublisher()
    cancellations = Cancellations(InMemoryCancelledMarks())
    planning = Planning(
        parallel(calls),
        InMemoryGeneratedPlans(),
        publisher,
        progress=publisher,
        cancellations=cancellations,
        policy=PromptPolicy(100, allow_override=False),
    )
    request = PlanRequested(request_id=uuid.uuid4(), user_id=uuid.uuid4(), user_profile=PROFILE)

    planned = asyncio.create_task(planning.plan_requested(request))
    while len(calls.paid) < len(PARTS):  # every week is being written
        await asyncio.sleep(0.01)
    cancellations.heard(request.request_id)
    await planned

    assert publisher.of_type(PlanGenerated) == []
    # Every part, and the first adjusted skeleton (none was asked for here; one could be running).
    expected = (*PARTS, "skeleton-r1")
    assert sorted(calls.abandoned) == sorted(f"{request.request_id}.{part}" for part in expected)


# --- the ledger records travel with the plan -------------------------------------------------------


def metered_planning(
    overrides: dict[str, list[Any]] | None = None,
) -> tuple[Planning, RecordingPublisher, InMemoryParts]:
    publisher = RecordingPublisher()
    meter = LlmMeter("planner", {"fake-model": (0.15, 0.60)}, ledger=publisher)
    parts = InMemoryParts()
    calls = ScriptedCalls(answering(overrides), meter=meter)
    planning = Planning(
        parallel(calls, parts),
        InMemoryGeneratedPlans(),
        publisher,
        progress=publisher,
        cancellations=Cancellations(InMemoryCancelledMarks()),
        policy=PromptPolicy(100, allow_override=False),
    )
    return planning, publisher, parts


async def test_a_plans_paid_calls_travel_inside_it_and_an_unusable_reply_is_recorded_at_once() -> None:
    planning, publisher, _ = metered_planning({"week3": [InvalidReply("not JSON")]})
    request = PlanRequested(request_id=uuid.uuid4(), user_id=uuid.uuid4(), user_profile=PROFILE)
    bind_request_id(request.request_id)

    await planning.plan_requested(request)

    [generated] = publisher.of_type(PlanGenerated)
    assert isinstance(generated, PlanGenerated)
    assert len(generated.calls) == 1 + PLAN_WEEKS
    assert {call.outcome for call in generated.calls} == {"ok"}
    assert len({call.call_id for call in generated.calls}) == len(generated.calls)
    # The unusable reply was paid too, and nothing keeps it: recorded on its own, at once.
    [spoiled] = publisher.of_type(LlmCallRecorded)
    assert isinstance(spoiled, LlmCallRecorded) and spoiled.outcome == "invalid_reply"


async def test_a_failed_delivery_records_what_it_paid_and_the_redelivery_carries_it_once_more() -> None:
    # Week 3 keeps failing in a way worth a redelivery: the other parts are kept, with their records.
    planning, publisher, parts = metered_planning({"week3": [RetryLater("llm_timeout", 0.0)]})
    request = PlanRequested(request_id=uuid.uuid4(), user_id=uuid.uuid4(), user_profile=PROFILE)
    bind_request_id(request.request_id)

    with pytest.raises(RetryLater):
        await planning.plan_requested(request)
    recorded = {call.call_id for call in publisher.of_type(LlmCallRecorded) if isinstance(call, LlmCallRecorded)}
    assert len(recorded) == PLAN_WEEKS  # the skeleton and seven weeks, published since no plan carries them
    assert {call.call_id for kept in parts.kept.values() for call in kept.calls} == recorded
    assert parts.reads == 0  # the request's first delivery: nothing was kept before it to look for

    await planning.plan_requested(request)  # the redelivery buys week 3 only
    assert parts.reads == len(PARTS)  # and looks for each part first

    [generated] = publisher.of_type(PlanGenerated)
    assert isinstance(generated, PlanGenerated)
    carried = {call.call_id for call in generated.calls}
    assert len(carried) == 1 + PLAN_WEEKS and recorded < carried  # stored once each, by call_id


# --- a provider that is not OpenAI-compatible: one new adapter, one line of wiring ----------------


class TemplateEngineError(Exception):
    """How the made-up provider below says it is overloaded."""


class TemplateEngine:
    """A provider with an API of its own: ``render(task, data) -> str`` of JSON."""

    def __init__(self) -> None:
        self.overloaded_once = True

    def render(self, task: str, data: dict[str, Any]) -> str:
        if self.overloaded_once:
            self.overloaded_once = False
            raise TemplateEngineError("busy")
        return json.dumps(data)


class TemplateEngineCalls:
    """The whole adapter: ``StructuredCalls`` over ``TemplateEngine``, its errors mapped to outcomes."""

    model = "template-engine-1"

    def __init__(self, engine: TemplateEngine, source: Callable[[str, type[Any]], pydantic.BaseModel]) -> None:
        self._engine = engine
        self._source = source

    async def call(self, key: str, prompt: Prompt, reply_type: type[ReplyT]) -> StructuredReply[ReplyT]:
        try:
            text = self._engine.render(reply_type.__name__, self._source(key, reply_type).model_dump(mode="json"))
        except TemplateEngineError as exc:
            raise RetryLater("llm_rate_limited", 0.0) from exc
        usage = LlmUsage(model=self.model, prompt_tokens=len(prompt.user), completion_tokens=len(text) // 4)
        try:
            return StructuredReply(reply_type.model_validate_json(text), usage)
        except pydantic.ValidationError as exc:
            raise InvalidReply(str(exc), usage) from exc

    async def forget(self, key: str) -> None:
        pass

    async def abandon(self, key: str) -> None:
        pass


async def test_a_provider_that_is_not_openai_compatible_is_one_adapter_away() -> None:
    publisher = RecordingPublisher()
    calls = TemplateEngineCalls(TemplateEngine(), written)  # the one line of wiring
    planning = Planning(
        SkeletonThenWeeks(calls, InMemoryParts(), publisher, tries=2, max_concurrent_calls=4),
        InMemoryGeneratedPlans(),
        publisher,
        progress=publisher,
        cancellations=Cancellations(InMemoryCancelledMarks()),
        policy=PromptPolicy(100, allow_override=False),
    )
    request = PlanRequested(request_id=uuid.uuid4(), user_id=uuid.uuid4(), user_profile=PROFILE)

    await planning.plan_requested(request)

    (generated,) = publisher.of_type(PlanGenerated)
    assert isinstance(generated, PlanGenerated)
    assert generated.plan.weeks == PLAN.weeks
    assert generated.usage.model == "template-engine-1"


async def test_a_plan_whose_deload_is_heavier_than_the_week_before_rewrites_only_that_week() -> None:
    assert next(w for w in SKELETON.weeks if w.week == 4).deload
    heavy = PLAN.weeks[3].model_copy(
        update={
            "days": [
                d.model_copy(update={"exercises": [i.model_copy(update={"sets": 10}) for i in d.exercises]})
                for d in PLAN.weeks[3].days
            ]
        }
    )
    calls = ScriptedCalls(answering({"week4": [heavy]}))
    progress = RecordingPublisher()

    checked = await SkeletonThenWeeks(calls, InMemoryParts(), progress, tries=2, max_concurrent_calls=16).write(
        uuid.uuid4(), PROMPT
    )

    assert checked.plan.weeks == PLAN.weeks
    assert parts_paid(calls) == sorted([*PARTS, "week4"])  # week 4 twice, nothing else
    shown = [(n.week.week, n.week_version) for n in progress.notices if n.week is not None]
    assert sorted(shown) == sorted([*((n, 1) for n in range(1, PLAN_WEEKS + 1)), (4, 2)])
