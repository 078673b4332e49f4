"""The waitpoint in the planner (``services.planner.review``) over the structured-call port's fake:
a request that asks to see its skeleton stops after it and pays for nothing else; a confirmation
goes on with the kept skeleton; an adjustment writes a new one with the user's words and stops again."""

import random
import uuid
from typing import Any

from contracts.events import (
    LlmCallRecorded,
    PlanAwaitingReview,
    PlanCancelled,
    PlanGenerated,
    PlanRequested,
    ReviewDecision,
)
from contracts.plan import PlanSkeleton, TrainingWeek
from llm_simulator.intent import read_intent
from llm_simulator.plans import skeleton_of, write_plan
from service_runtime.llm import Prompt
from service_runtime.llm.fake import ScriptedCalls
from service_runtime.llm.metering import LlmMeter
from service_runtime.logs import bind_request_id
from services.planner.cancellation import Cancellations
from services.planner.planning import Planning, PromptPolicy
from services.planner.review import ADJUSTMENTS_HEADING
from services.planner.skeleton_weeks import SkeletonThenWeeks
from tests.fakes import InMemoryCancelledMarks, InMemoryGeneratedPlans, InMemoryParts, RecordingPublisher

PROFILE = "I want to build muscle, 3x per week, I have a full gym"
ADJUSTMENT = "no squats, my knee hurts"


def drawn(user: str) -> tuple[PlanSkeleton, list[TrainingWeek]]:
    """What a model following its own skeleton writes for this user's turn (the simulator's plan)."""
    intent = read_intent(user, "")
    plan = write_plan(intent, random.Random(len(user)))
    return skeleton_of(plan, intent), plan.weeks


class Model:
    """Answers each call from the user's turn it was given, and remembers the turns."""

    def __init__(self) -> None:
        self.users: dict[str, str] = {}

    async def __call__(self, key: str, prompt: Prompt, reply_type: type[Any]) -> Any:
        part = key.split(".", 1)[1]
        self.users[part] = prompt.user
        skeleton, weeks = drawn(prompt.user)
        if reply_type is PlanSkeleton:
            return skeleton
        return weeks[int(part.removeprefix("week")) - 1]


def planner() -> tuple[Planning, ScriptedCalls, Model, RecordingPublisher]:
    publisher = RecordingPublisher()
    model = Model()
    calls = ScriptedCalls(model, meter=LlmMeter("planner", {"fake-model": (0.15, 0.60)}, ledger=publisher))
    planning = Planning(
        SkeletonThenWeeks(calls, InMemoryParts(), publisher, tries=2, max_concurrent_calls=16),
        InMemoryGeneratedPlans(),
        publisher,
        progress=publisher,
        cancellations=Cancellations(InMemoryCancelledMarks()),
        policy=PromptPolicy(100, allow_override=False),
    )
    return planning, calls, model, publisher


def parts(calls: ScriptedCalls) -> list[str]:
    return [key.split(".", 1)[1] for key in calls.paid]


async def test_a_request_that_asks_to_see_its_skeleton_stops_there_and_pays_for_nothing_else() -> None:
    planning, calls, _, publisher = planner()
    request = PlanRequested(request_id=uuid.uuid4(), user_id=uuid.uuid4(), user_profile=PROFILE, review_seconds=60)
    bind_request_id(request.request_id)  # as the consumer runtime does: the ledger names the request

    await planning.plan_requested(request)

    assert parts(calls) == ["skeleton"]
    (waiting,) = publisher.of_type(PlanAwaitingReview)
    assert isinstance(waiting, PlanAwaitingReview)
    assert (waiting.round, waiting.review_seconds) == (0, 60)
    skeleton, _ = drawn(PROFILE)
    assert waiting.outline.blocks == skeleton.blocks and waiting.outline.weeks == skeleton.weeks
    assert not publisher.of_type(PlanGenerated)
    assert len(publisher.of_type(LlmCallRecorded)) == 1  # the skeleton's call is on the ledger now
    notice = publisher.notices[-1]
    assert (notice.stage, notice.outline) == ("waiting", waiting.outline) and notice.review_until is not None


async def test_a_confirmation_goes_on_with_the_kept_skeleton() -> None:
    planning, calls, _, publisher = planner()
    request = PlanRequested(request_id=uuid.uuid4(), user_id=uuid.uuid4(), user_profile=PROFILE, review_seconds=60)
    await planning.plan_requested(request)

    confirmed = request.model_copy(update={"review": ReviewDecision(action="confirm")})
    await planning.plan_requested(PlanRequested.model_validate(confirmed.model_dump()))

    assert parts(calls).count("skeleton") == 1 and len(calls.paid) == 9
    (generated,) = publisher.of_type(PlanGenerated)
    assert isinstance(generated, PlanGenerated)
    assert generated.skeleton == drawn(PROFILE)[0]


async def test_an_adjustment_writes_the_skeleton_again_with_the_users_words_and_shows_it_again() -> None:
    planning, calls, model, publisher = planner()
    request = PlanRequested(request_id=uuid.uuid4(), user_id=uuid.uuid4(), user_profile=PROFILE, review_seconds=60)
    await planning.plan_requested(request)

    adjusted = PlanRequested.model_validate(
        {**request.model_dump(), "review": {"action": "adjust", "round": 1, "adjustments": [ADJUSTMENT]}}
    )
    await planning.plan_requested(adjusted)
    await planning.plan_requested(adjusted)  # a redelivery pays for nothing

    assert parts(calls) == ["skeleton", "skeleton-r1"]
    assert model.users["skeleton-r1"] == f"{PROFILE}\n\n{ADJUSTMENTS_HEADING}\n- {ADJUSTMENT}"
    first, second, _ = publisher.of_type(PlanAwaitingReview)
    assert isinstance(first, PlanAwaitingReview) and isinstance(second, PlanAwaitingReview)
    assert second.round == 1 and second.outline != first.outline

    confirmed = PlanRequested.model_validate(
        {**request.model_dump(), "review": {"action": "confirm", "round": 1, "adjustments": [ADJUSTMENT]}}
    )
    await planning.plan_requested(confirmed)
    (generated,) = publisher.of_type(PlanGenerated)
    assert isinstance(generated, PlanGenerated)
    assert generated.skeleton == drawn(model.users["skeleton-r1"])[0]
    assert all(model.users[f"week{n}"] == model.users["skeleton-r1"] for n in range(1, 9))  # the weeks follow it


def test_each_decision_is_its_own_message() -> None:
    request = PlanRequested(request_id=uuid.uuid4(), user_id=uuid.uuid4(), user_profile=PROFILE, review_seconds=60)
    confirm = PlanRequested.model_validate({**request.model_dump(), "review": {"action": "confirm"}})
    adjust = PlanRequested.model_validate({**request.model_dump(), "review": {"action": "adjust", "round": 1}})
    redriven = PlanRequested.model_validate({**confirm.model_dump(), "redrive": 2})
    ids = [r.dedup_id for r in (request, confirm, adjust, redriven)]
    assert ids == [
        str(request.request_id),
        f"{request.request_id}:review:0:confirm",
        f"{request.request_id}:review:1:adjust",
        f"{request.request_id}:review:0:confirm:redrive:2",
    ]


async def test_a_cancel_stops_every_round_of_the_skeleton_that_may_still_be_running() -> None:
    planning, calls, _, _ = planner()
    request = PlanRequested(request_id=uuid.uuid4(), user_id=uuid.uuid4(), user_profile=PROFILE, review_seconds=60)
    await planning.plan_requested(request)
    adjusted = PlanRequested.model_validate(
        {**request.model_dump(), "review": {"action": "adjust", "round": 1, "adjustments": [ADJUSTMENT]}}
    )
    await planning.plan_requested(adjusted)

    await planning.plan_cancelled(PlanCancelled(request_id=request.request_id, user_id=request.user_id))

    abandoned = {key.split(".", 1)[1] for key in calls.abandoned}
    assert {"skeleton", "skeleton-r1", "skeleton-r2"} <= abandoned  # round 2 may be being written
