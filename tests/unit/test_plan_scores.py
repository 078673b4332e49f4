"""Quality scores: deterministic, 1 where a plan does what it should, lower where it does less."""

import random

import pytest

from contracts.plan import TrainingWeek, WorkoutPlan
from llm_simulator.intent import read_intent
from llm_simulator.plans import skeleton_of, write_plan
from services.planner.scores import DIMENSIONS, plan_scores

PROFILE = "I want to build muscle, 3x per week, I have a full gym"
INTENT = read_intent(PROFILE, "")
PLAN = write_plan(INTENT, random.Random(3))
SKELETON = skeleton_of(PLAN, INTENT)


def with_weeks(plan: WorkoutPlan, weeks: list[TrainingWeek]) -> WorkoutPlan:
    return plan.model_copy(update={"weeks": weeks})


def test_every_dimension_and_overall_is_scored_the_same_way_each_time() -> None:
    scores = plan_scores(PLAN, profile=PROFILE, skeleton=SKELETON)

    assert set(scores) == {*DIMENSIONS, "overall"}
    assert all(0.0 <= value <= 1.0 for value in scores.values())
    assert scores == plan_scores(PLAN, profile=PROFILE, skeleton=SKELETON)
    assert scores["overall"] == pytest.approx(sum(scores[d] for d in DIMENSIONS) / len(DIMENSIONS), abs=0.001)
    assert (scores["days"], scores["deload"], scores["equipment"], scores["injury"]) == (1.0, 1.0, 1.0, 1.0)


def test_a_plan_that_repeats_one_week_scores_no_progression_and_no_deload() -> None:
    same = [PLAN.weeks[0].model_copy(update={"week": n}) for n in range(1, 9)]

    scores = plan_scores(with_weeks(PLAN, same), profile=PROFILE, skeleton=SKELETON)

    assert scores["progression"] == 0.0
    assert scores["deload"] == 0.0  # the skeleton's deload weeks are no lighter than the week before


def test_days_injury_equipment_rest_and_variety_each_count_what_they_say() -> None:
    week = PLAN.weeks[0]
    first = week.days[0]
    squat = first.exercises[0].model_copy(update={"name": "Barbell Back Squat", "rest_seconds": 5})
    repeated = first.model_copy(update={"exercises": [squat, squat]})
    odd_week = week.model_copy(update={"days": [repeated]})
    weeks = [odd_week, *PLAN.weeks[1:]]
    profile = "3x per week, bodyweight only, bad knee"

    scores = plan_scores(with_weeks(PLAN, weeks), profile=profile, skeleton=SKELETON)
    base = plan_scores(PLAN, profile=profile, skeleton=SKELETON)

    assert scores["days"] == pytest.approx(7 / 8, abs=0.001)  # week 1 trains one day, not three
    assert scores["variety"] < base["variety"]  # the same exercise twice in a day
    assert scores["rest"] < base["rest"]  # 5 s of rest
    assert scores["injury"] < 1.0  # a squat with a bad knee
    assert scores["equipment"] < 1.0  # a barbell with no equipment
