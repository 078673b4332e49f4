"""Writing one week again (``services.planner.regeneration``) over the structured-call port's fake:
what is checked, what is sent back to be written again, what a redelivery pays, and what is published."""

import random
import uuid
from typing import Any

import pytest

from contracts.events import WeekGenerated, WeekRequested
from contracts.plan import TrainingWeek
from llm_simulator.intent import read_intent
from llm_simulator.plans import skeleton_of, write_plan
from service_runtime.llm import Prompt
from service_runtime.llm.fake import ScriptedCalls
from service_runtime.outcomes import GiveUp
from services.planner.cancellation import Cancellations
from services.planner.parts import PartWriter
from services.planner.planning import PromptPolicy
from services.planner.quality import plan_problems, week_off_skeleton
from services.planner.regeneration import PART, WeekRewriting, skeleton_of_plan, skeleton_with_week
from tests.fakes import InMemoryCancelledMarks, InMemoryParts, RecordingPublisher

PROFILE = "I want to build muscle, 3x per week, I have a full gym"
INTENT = read_intent(PROFILE, "")
PLAN = write_plan(INTENT, random.Random(3))
SKELETON = skeleton_of(PLAN, INTENT)
KNEE_FREE = write_plan(read_intent(f"{PROFILE}. My knee hurts", ""), random.Random(3))


def request(week: int = 2, instruction: str | None = None, *, skeleton: bool = True) -> WeekRequested:
    return WeekRequested(
        request_id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        plan_id=uuid.uuid4(),
        week=week,
        instruction=instruction,
        user_profile=PROFILE,
        plan=PLAN,
        skeleton=SKELETON if skeleton else None,
        plan_revision=3,
    )


def rewriting(replies: list[Any], parts: InMemoryParts | None = None) -> tuple[WeekRewriting, ScriptedCalls]:
    prompts: list[Prompt] = []

    async def answer(key: str, prompt: Prompt, reply_type: type[Any]) -> Any:
        prompts.append(prompt)
        return replies.pop(0)

    calls = ScriptedCalls(answer)
    calls.prompts = prompts  # type: ignore[attr-defined]
    publisher = RecordingPublisher()
    use_case = WeekRewriting(
        PartWriter(calls, parts or InMemoryParts(), max_concurrent_calls=4),
        publisher,
        progress=publisher,
        cancellations=Cancellations(InMemoryCancelledMarks()),
        policy=PromptPolicy(4000, allow_override=False),
        tries=2,
    )
    use_case.published = publisher  # type: ignore[attr-defined]
    return use_case, calls


def published(use_case: WeekRewriting) -> WeekGenerated:
    (event,) = use_case.published.of_type(WeekGenerated)  # type: ignore[attr-defined]
    assert isinstance(event, WeekGenerated)
    return event


def knee_free_week(number: int) -> TrainingWeek:
    return KNEE_FREE.weeks[number - 1]


async def test_without_an_instruction_the_week_follows_its_skeleton_block() -> None:
    other_exercises = knee_free_week(2)
    assert week_off_skeleton(other_exercises, SKELETON)
    use_case, calls = rewriting([other_exercises, PLAN.weeks[1]])

    await use_case.week_requested(request(2))

    assert calls.paid == [f"{calls.paid[0].split('.')[0]}.{PART}"] * 2  # sent back once, then kept
    event = published(use_case)
    assert event.week == PLAN.weeks[1] and event.instruction is None
    assert event.plan_revision == 3  # the persister refuses it if the plan was revised since
    assert event.prompt_version == "week-again-v1+plan-v1"
    assert {ref.name for ref in event.exercises} == {i.name for d in PLAN.weeks[1].days for i in d.exercises}
    assert 0 < event.quality["overall"] <= 1


async def test_an_instruction_travels_with_the_profile_and_holds_the_week_to_it() -> None:
    use_case, calls = rewriting([PLAN.weeks[1], knee_free_week(2)])

    await use_case.week_requested(request(2, "fewer squats, my knee hurts"))

    # The first reply still loads the knee the instruction names: written again.
    assert len(calls.paid) == 2
    prompt = calls.prompts[0]  # type: ignore[attr-defined]
    assert prompt.user.endswith("What to change in week 2: fewer squats, my knee hurts")
    assert PROFILE in prompt.user
    assert any("Write week 2 of this 8-week programme again" in text for text in prompt.system)
    event = published(use_case)
    assert event.week == knee_free_week(2) and event.instruction == "fewer squats, my knee hurts"


async def test_a_week_that_breaks_the_plan_around_it_is_written_again_then_given_up() -> None:
    # A deload week heavier than the week before it: fine alone, wrong within the plan.
    deload = next(w.week for w in SKELETON.weeks if w.deload)
    heavy = PLAN.weeks[deload - 1].model_copy(
        update={
            "days": [
                day.model_copy(update={"exercises": [e.model_copy(update={"sets": 10}) for e in day.exercises]})
                for day in PLAN.weeks[deload - 1].days
            ]
        }
    )
    use_case, calls = rewriting([heavy, heavy])

    with pytest.raises(GiveUp) as failed:
        await use_case.week_requested(request(deload))

    assert failed.value.reason == "plan_quality"
    assert f"deload week {deload} has more volume" in str(failed.value)
    assert len(calls.paid) == 2 and not use_case.published.of_type(WeekGenerated)  # type: ignore[attr-defined]


async def test_a_redelivery_after_the_week_was_written_pays_nothing_again() -> None:
    parts = InMemoryParts()
    event = request(3)
    first, calls = rewriting([PLAN.weeks[2]], parts)
    await first.week_requested(event)
    again, calls_again = rewriting([], parts)

    await again.week_requested(event)

    assert len(calls.paid) == 1 and calls_again.paid == []
    assert published(again).week == published(first).week


def test_a_plan_written_in_one_call_gets_a_skeleton_from_its_own_weeks() -> None:
    skeleton = skeleton_of_plan(PLAN)
    assert skeleton.days_per_week == len(PLAN.weeks[0].days)
    assert all(not week_off_skeleton(week, skeleton) for week in PLAN.weeks)
    assert plan_problems(PLAN, profile=PROFILE, skeleton=skeleton) == []


def test_a_rewritten_week_takes_its_own_block_and_the_others_keep_theirs() -> None:
    new = knee_free_week(2)
    frame = skeleton_with_week(SKELETON, new)
    assert not week_off_skeleton(new, frame)
    assert all(not week_off_skeleton(week, frame) for week in PLAN.weeks if week.week != 2)
    assert sorted(n for block in frame.blocks for n in block.weeks) == list(range(1, 9))
