"""When the planner looks at a background response again (``service_runtime/llm/polling.py``)."""

import pytest

from service_runtime.llm.polling import PollSchedule


def test_until_a_kind_has_finished_once_the_fixed_interval_applies() -> None:
    schedule = PollSchedule(5.0)
    schedule.finished("PlanSkeleton", 12.0)

    assert schedule.next_look("WorkoutPlan", 0.0) == 5.0
    assert schedule.next_look("WorkoutPlan", 300.0) == 5.0


def test_the_first_look_comes_shortly_before_calls_of_the_kind_finish_then_short_steps() -> None:
    schedule = PollSchedule(5.0)
    schedule.finished("WorkoutPlan", 60.0)

    assert schedule.next_look("WorkoutPlan", 0.0) == pytest.approx(54.0)
    assert schedule.next_look("WorkoutPlan", 50.0) == pytest.approx(4.0)
    assert schedule.next_look("WorkoutPlan", 54.0) == pytest.approx(3.0)  # a twentieth of 60 s
    assert schedule.next_look("WorkoutPlan", 200.0) == pytest.approx(3.0)  # running late: keep stepping


def test_the_quickest_recent_call_is_the_guide() -> None:
    schedule = PollSchedule(5.0)
    for seconds in (60.0, 58.0, 20.0, 61.0):
        schedule.finished("TrainingWeek", seconds)

    assert schedule.next_look("TrainingWeek", 0.0) == pytest.approx(18.0)
    assert schedule.next_look("TrainingWeek", 18.0) == pytest.approx(1.0)


def test_steps_stay_between_the_minimum_and_the_interval() -> None:
    schedule = PollSchedule(5.0, min_step_seconds=0.5)
    schedule.finished("quick", 2.0)
    schedule.finished("slow", 400.0)

    assert schedule.next_look("quick", 10.0) == 0.5
    assert schedule.next_look("slow", 390.0) == 5.0


def test_only_recent_durations_count_and_nonsense_is_ignored() -> None:
    schedule = PollSchedule(5.0)
    schedule.finished("WorkoutPlan", 10.0)
    schedule.finished("WorkoutPlan", -3.0)  # clocks that disagree
    for _ in range(20):
        schedule.finished("WorkoutPlan", 100.0)

    assert schedule.next_look("WorkoutPlan", 0.0) == pytest.approx(90.0)
