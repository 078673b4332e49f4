"""Progressive generation over the structured-call port, against the in-memory fake (no simulator).

The fake model answers each call the way a model following the prompt would: the outline and the
overview of one drawn plan, and for a day part the exercises its prompt lists, with that plan's
prescriptions for that week and day.
"""

import asyncio
import dataclasses
import random
import re
import uuid
from typing import Any

import pydantic
import pytest

from contracts.plan import PLAN_WEEKS, PlanOutline, PlanOverview, TrainingDay
from contracts.progress import PlanProgress
from llm_simulator.intent import read_intent
from llm_simulator.plans import skeleton_of, write_plan
from service_runtime.llm import Prompt
from service_runtime.llm.fake import ScriptedCalls
from service_runtime.outcomes import RetryLater
from services.planner.planning import PlanPrompt
from services.planner.progressive import ProgressiveWeeks, day_parts
from services.planner.review import AwaitingReview, Checkpoint
from tests.fakes import InMemoryParts

PROFILE = "I want to build muscle, 3x per week, I have a full gym"
INTENT = read_intent(PROFILE, "")
PLAN = write_plan(INTENT, random.Random(3))
SKELETON = skeleton_of(PLAN, INTENT)
OUTLINE = PlanOutline.model_validate(SKELETON.model_dump())
OVERVIEW = PlanOverview.model_validate(SKELETON.model_dump())
PROMPT = PlanPrompt(["Our rules."], PROFILE)
_LISTED = re.compile(r"Only these exercises, in this order: (.+)$", re.MULTILINE)
_PART = re.compile(r"week(\d)\.day(\d)\.(\d+)$")


def written(key: str, prompt: Prompt, reply_type: type[Any]) -> pydantic.BaseModel:
    if reply_type is PlanOutline:
        return OUTLINE
    if reply_type is PlanOverview:
        return OVERVIEW
    match = _PART.search(key)
    assert match is not None and reply_type is TrainingDay, key
    week, day = int(match.group(1)), int(match.group(2))
    [listed] = [m.group(1) for text in prompt.after if (m := _LISTED.search(text))]
    names = listed.split("; ")
    [full] = [d for d in PLAN.weeks[week - 1].days if d.day == day]
    by_name = {item.name: item for item in full.exercises}
    return full.model_copy(update={"exercises": [by_name[name] for name in names]})


class Answers:
    """Answers by part name: ``overrides[part]`` in turn first, then the good reply; a part with a
    gate waits for it; every call's part is recorded in the order the calls were made."""

    def __init__(self, overrides: dict[str, list[Any]] | None = None, gates: dict[str, asyncio.Event] | None = None):
        self.overrides = overrides or {}
        self.gates = gates or {}
        self.asked: list[str] = []

    async def __call__(self, key: str, prompt: Prompt, reply_type: type[Any]) -> Any:
        part = key.split(".", 1)[1]
        self.asked.append(part)
        if (gate := self.gates.get(part)) is not None:
            await gate.wait()
        if self.overrides.get(part):
            return self.overrides[part].pop(0)
        return written(key, prompt, reply_type)


class Progress:
    def __init__(self) -> None:
        self.notices: list[PlanProgress] = []

    async def announce(self, progress: PlanProgress) -> None:
        self.notices.append(progress)


def progressive(
    calls: ScriptedCalls, parts: InMemoryParts | None = None, progress: Progress | None = None
) -> ProgressiveWeeks:
    return ProgressiveWeeks(
        calls,
        parts or InMemoryParts(),
        progress or Progress(),
        tries=2,
        max_concurrent_calls=64,
        exercises_per_call=6,
        first_week_exercises_per_call=3,
    )


def expected_parts() -> list[str]:
    names = ["outline", "overview"]
    for week in range(1, PLAN_WEEKS + 1):
        block = next(b for b in OUTLINE.blocks if week in b.weeks)
        for day in block.days:
            count = len(day_parts(day.exercises, 3 if week == 1 else 6))
            names += [f"week{week}.day{day.day}.{i}" for i in range(1, count + 1)]
    return names


@pytest.mark.parametrize(
    ("count", "most", "sizes"),
    [(6, 3, [3, 3]), (5, 3, [3, 2]), (7, 3, [3, 2, 2]), (6, 6, [6]), (1, 3, [1]), (12, 5, [4, 4, 4])],
)
def test_a_days_exercises_are_split_in_order_into_parts_as_even_as_they_can_be(
    count: int, most: int, sizes: list[int]
) -> None:
    exercises = [f"e{i}" for i in range(count)]

    parts = day_parts(exercises, most)

    assert [len(part) for part in parts] == sizes
    assert [name for part in parts for name in part] == exercises


async def test_the_plan_is_the_outline_the_overview_and_every_week_assembled_from_its_parts() -> None:
    answers = Answers()
    calls = ScriptedCalls(answers)

    checked = await progressive(calls).write(uuid.uuid4(), PROMPT)

    assert checked.plan.weeks == PLAN.weeks
    assert (checked.plan.title, checked.plan.summary) == (SKELETON.title, SKELETON.summary)
    assert sorted(answers.asked) == sorted(expected_parts())
    assert checked.usage.calls == len(expected_parts())
    # The outline first; then week 1's parts before any other week's (they go first when slots are short).
    assert answers.asked[0] == "outline"
    week_of = [int(part[4]) for part in answers.asked if part.startswith("week")]
    assert week_of == sorted(week_of)


async def test_each_week_is_announced_as_soon_as_its_own_parts_are_in() -> None:
    # Every week but the first waits on one of its parts.
    gates = {
        name: asyncio.Event()
        for name in expected_parts()
        if name.startswith("week") and not name.startswith("week1.") and name.endswith(".1")
    }
    progress = Progress()
    writing = asyncio.create_task(
        progressive(ScriptedCalls(Answers(gates=gates)), progress=progress).write(uuid.uuid4(), PROMPT)
    )
    while not progress.notices:
        await asyncio.sleep(0.01)

    assert [n.weeks_done for n in progress.notices] == [1]
    assert not writing.done()
    for gate in gates.values():
        gate.set()
    await writing
    assert [n.weeks_done for n in progress.notices] == list(range(1, PLAN_WEEKS + 1))


async def test_a_part_failing_its_checks_is_written_again_and_nothing_else_is() -> None:
    asked = written(
        "r.week2.day1.1",
        Prompt(
            (),
            PROFILE,
            after=(f"Only these exercises, in this order: {'; '.join(OUTLINE.blocks[0].days[0].exercises)}",),
        ),
        TrainingDay,
    )
    reversed_order = asked.model_copy(update={"exercises": list(reversed(asked.exercises))})  # type: ignore[attr-defined]
    answers = Answers({"week2.day1.1": [reversed_order]})

    checked = await progressive(ScriptedCalls(answers)).write(uuid.uuid4(), PROMPT)

    assert checked.plan.weeks == PLAN.weeks
    assert answers.asked.count("week2.day1.1") == 2
    assert sorted(set(answers.asked)) == sorted(expected_parts())
    assert len(answers.asked) == len(expected_parts()) + 1


@pytest.mark.parametrize("reattach", [False, True], ids=["chat", "background"])
async def test_a_crash_mid_plan_rebuys_only_the_parts_that_cannot_be_recovered(reattach: bool) -> None:
    late = {name: asyncio.Event() for name in expected_parts() if name.startswith(("week7.", "week8."))}
    answers = Answers(gates=late)
    calls = ScriptedCalls(answers, reattach=reattach)
    parts, request_id = InMemoryParts(), uuid.uuid4()

    first = asyncio.create_task(progressive(calls, parts).write(request_id, PROMPT))
    while len(parts.kept) < len(expected_parts()) - len(late):
        await asyncio.sleep(0.01)
    first.cancel()  # the planner dies while weeks 7 and 8 are being written
    with pytest.raises(asyncio.CancelledError):
        await first
    for gate in late.values():
        gate.set()

    checked = await progressive(calls, parts).write(request_id, PROMPT)

    assert checked.plan.weeks == PLAN.weeks
    paid = sorted(key.split(".", 1)[1] for key in calls.paid)
    # Streamed parts die with their connection and are bought again; background responses are
    # re-attached to. Finished parts are never bought twice.
    assert paid == sorted([*expected_parts(), *([] if reattach else late)])


async def test_a_refused_part_fails_the_delivery_after_every_other_part_is_kept() -> None:
    refusals: list[Any] = [RetryLater("llm_timeout", "too slow")] * 3
    parts = InMemoryParts()

    with pytest.raises(RetryLater):
        await progressive(ScriptedCalls(Answers({"week3.day1.1": refusals})), parts).write(uuid.uuid4(), PROMPT)

    assert {name for _, name in parts.kept} == set(expected_parts()) - {"week3.day1.1"}


class HeavyFirstDeload(Answers):
    """Week 4 (a deload in the outline) written at ten sets an exercise the first time it is asked for."""

    def __init__(self) -> None:
        super().__init__()
        self.heavy_once: set[str] = set()

    async def __call__(self, key: str, prompt: Prompt, reply_type: type[Any]) -> Any:
        reply = await super().__call__(key, prompt, reply_type)
        part = key.split(".", 1)[1]
        if part.startswith("week4.") and part not in self.heavy_once:
            self.heavy_once.add(part)
            return reply.model_copy(update={"exercises": [i.model_copy(update={"sets": 10}) for i in reply.exercises]})
        return reply


async def test_a_plan_whose_deload_is_heavier_than_the_week_before_rewrites_only_that_week() -> None:
    assert next(w for w in OUTLINE.weeks if w.week == 4).deload
    answers, progress = HeavyFirstDeload(), Progress()

    checked = await progressive(ScriptedCalls(answers), progress=progress).write(uuid.uuid4(), PROMPT)

    assert checked.plan.weeks == PLAN.weeks
    week4 = [name for name in expected_parts() if name.startswith("week4.")]
    assert sorted(answers.asked) == sorted([*expected_parts(), *week4])  # week 4's parts twice, nothing else
    assert checked.usage.calls == len(expected_parts()) + len(week4)
    shown = [(n.week.week, n.week_version) for n in progress.notices if n.week is not None]
    assert sorted(shown) == sorted([*((n, 1) for n in range(1, PLAN_WEEKS + 1)), (4, 2)])


async def test_a_request_that_asks_to_see_its_outline_stops_there_then_goes_on_with_the_kept_one() -> None:
    answers = Answers()
    calls = ScriptedCalls(answers)
    parts = InMemoryParts()
    request_id = uuid.uuid4()

    with pytest.raises(AwaitingReview) as stopped:
        await progressive(calls, parts).write(request_id, dataclasses.replace(PROMPT, checkpoint=Checkpoint(stop=True)))
    assert answers.asked == ["outline"]
    assert stopped.value.outline == OUTLINE

    checked = await progressive(calls, parts).write(request_id, PROMPT)  # confirmed: round 0, no stop
    assert answers.asked.count("outline") == 1 and sorted(answers.asked) == sorted(expected_parts())
    assert checked.plan.weeks == PLAN.weeks
