"""Plan quality checks: the simulator's plans pass, broken ones are caught, and planning regenerates."""

import asyncio
import random
import uuid

import pytest

from contracts.events import PlanGenerated, PlanRequested
from contracts.plan import WorkoutPlan
from llm_simulator.faults import broken
from llm_simulator.intent import read_intent
from llm_simulator.plans import skeleton_of, write_plan
from service_runtime.llm.fake import ScriptedCalls
from service_runtime.outcomes import GiveUp
from services.planner.cancellation import Cancellations
from services.planner.planning import Planning, PromptPolicy
from services.planner.quality import plan_problems, requested_days
from services.planner.single import SingleCall
from tests.fakes import InMemoryCancelledMarks, InMemoryGeneratedPlans, RecordingPublisher

PROFILES = [
    "I want to build muscle, 3x per week, I have a full gym",
    "Get stronger, 4 days a week, barbell at home",
    "Lose fat, 5x per week, dumbbells only",
    "General fitness, 2 days a week, bodyweight only, no equipment",
    "Beginner, 3x per week, knee pain, gym",
]


@pytest.mark.parametrize("profile", PROFILES)
def test_well_made_plans_pass_with_and_without_their_skeleton(profile: str) -> None:
    for seed in range(10):
        intent = read_intent(profile, "")
        plan = write_plan(intent, random.Random(seed))
        assert plan_problems(plan, profile=profile) == []
        assert plan_problems(plan, profile=profile, skeleton=skeleton_of(plan, intent)) == []


@pytest.mark.parametrize("profile", PROFILES)
def test_the_simulators_broken_plans_are_caught(profile: str) -> None:
    plan = write_plan(read_intent(profile, ""), random.Random(1))
    spoiled = WorkoutPlan.model_validate_json(broken(plan.model_dump_json()))
    assert any("training days" in p for p in plan_problems(spoiled, profile=profile))


def test_other_days_than_asked_for_are_a_problem() -> None:
    plan = write_plan(read_intent("build muscle 3x per week", ""), random.Random(2))
    assert requested_days("I can train 4 days a week") == 4
    assert any("asks for 4" in p for p in plan_problems(plan, profile="I can train 4 days a week"))


def test_equipment_in_a_no_equipment_plan_is_a_problem() -> None:
    plan = write_plan(read_intent("build muscle 3x per week, full gym", ""), random.Random(3))
    problems = plan_problems(plan, profile="3x per week, no equipment at all")
    assert any("equipment" in p for p in problems)


def test_a_heavier_deload_is_a_problem() -> None:
    plan = write_plan(read_intent("build muscle 3x per week, full gym", ""), random.Random(4))
    deload = plan.weeks[3]
    heavy_days = [
        day.model_copy(update={"exercises": [item.model_copy(update={"sets": 10}) for item in day.exercises]})
        for day in deload.days
    ]
    weeks = [*plan.weeks[:3], deload.model_copy(update={"days": heavy_days}), *plan.weeks[4:]]
    assert any("deload week 4" in p for p in plan_problems(plan.model_copy(update={"weeks": weeks}), profile="3x"))


def sequence(plans: list[WorkoutPlan]) -> ScriptedCalls:
    """Calls answered with the given plans in turn (the last one forever)."""
    return ScriptedCalls(lambda key, prompt, reply_type: plans[0] if len(plans) == 1 else plans.pop(0))


def _planning(calls: ScriptedCalls, publisher: RecordingPublisher) -> Planning:
    return Planning(
        SingleCall(calls, tries=2),
        InMemoryGeneratedPlans(),
        publisher,
        progress=publisher,
        cancellations=Cancellations(InMemoryCancelledMarks()),
        policy=PromptPolicy(100, allow_override=False),
    )


def _request(profile: str) -> PlanRequested:
    return PlanRequested(request_id=uuid.uuid4(), user_id=uuid.uuid4(), user_profile=profile)


def test_a_broken_plan_is_written_again_and_the_good_one_published() -> None:
    profile = PROFILES[0]
    good = write_plan(read_intent(profile, ""), random.Random(5))
    bad = WorkoutPlan.model_validate_json(broken(good.model_dump_json()))
    calls, publisher = sequence([bad, good]), RecordingPublisher()

    asyncio.run(_planning(calls, publisher).plan_requested(_request(profile)))

    (generated,) = publisher.of_type(PlanGenerated)
    assert isinstance(generated, PlanGenerated)
    assert generated.plan == good
    assert (len(calls.paid), len(calls.forgotten)) == (2, 1)
    assert generated.usage.calls == 2  # both paid calls are accounted for


def test_a_plan_that_stays_broken_ends_the_request_with_plan_quality() -> None:
    profile = PROFILES[0]
    good = write_plan(read_intent(profile, ""), random.Random(6))
    bad = WorkoutPlan.model_validate_json(broken(good.model_dump_json()))
    calls, publisher = sequence([bad]), RecordingPublisher()

    with pytest.raises(GiveUp) as failure:
        asyncio.run(_planning(calls, publisher).plan_requested(_request(profile)))

    assert failure.value.reason == "plan_quality"
    assert len(calls.paid) == 2
    assert publisher.events == []


@pytest.mark.parametrize(
    ("trouble", "joint"),
    [("I have knee pain", "knee"), ("lower back pain", "lower back"), ("my shoulder hurts", "shoulder")],
)
def test_exercises_that_load_a_painful_joint_are_a_problem(trouble: str, joint: str) -> None:
    # A plan written for someone without that trouble, checked against a profile that has it.
    plan = write_plan(read_intent("get stronger, 3x per week, full gym, advanced", ""), random.Random(8))
    assert any(f"loads the {joint}" in p for p in plan_problems(plan, profile=f"3x per week, {trouble}"))
    assert not any("loads the" in p for p in plan_problems(plan, profile="3x per week, no injuries"))
