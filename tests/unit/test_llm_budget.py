"""The shared provider budget's rule (``admit``) and the calls behind it (``Admitted``): refill, the
line (priority lane first, then the user who took least), stale waiters, tiers and Flex fallback."""

import asyncio
import time
import uuid
from typing import Any

import nats.errors
import pydantic
import pytest

from contracts.plan import TrainingWeek
from service_runtime.llm.admission import Admitted, TierPolicy, estimated_tokens
from service_runtime.llm.budget import STALE_SECONDS, BudgetState, Limits, MemoryBudgets, admit, fresh, learnt
from service_runtime.llm.fake import ScriptedCalls
from service_runtime.llm.port import Prompt
from service_runtime.llm.terms import calling_for, current_terms
from service_runtime.outcomes import RetryLater
from tests.fakes import sample_plan

PLAN = sample_plan(["Goblet Squat", "Push-up"])
LIMITS = Limits(tokens_per_minute=6_000, requests_per_minute=60)  # 100 tokens and 1 request a second


def _admit(state: BudgetState, ticket: str, need: int, user: str, now: float, *, lane: Any = "standard") -> Any:
    return admit(state, now=now, ticket=ticket, need=need, user=user, lane=lane, limits=LIMITS)


def test_a_call_takes_its_estimate_and_the_budget_refills_at_its_rate_per_minute() -> None:
    state, first = _admit(fresh(LIMITS, 0.0), "a", 5_000, "u1", 0.0)
    assert first.admitted
    assert state.tokens == 1_000
    state, second = _admit(state, "b", 2_000, "u1", 0.0)
    assert not second.admitted
    assert second.wait_seconds == pytest.approx(2.0)  # 1,000 tokens short at 100 a second, capped at 2 s
    state, later = _admit(state, "b", 2_000, "u1", 10.0)
    assert later.admitted
    assert state.tokens == pytest.approx(0.0)


def test_the_priority_lane_goes_first_then_the_user_who_took_least() -> None:
    state, _ = _admit(fresh(LIMITS, 0.0), "heavy-1", 5_000, "heavy", 0.0)
    # Three wait: the heavy user again, a light user, a priority user (who arrived last).
    state, heavy = _admit(state, "heavy-2", 2_000, "heavy", 0.1)
    state, light = _admit(state, "light-1", 2_000, "light", 0.2)
    state, vip = _admit(state, "vip-1", 2_000, "vip", 0.3, lane="priority")
    assert not (heavy.admitted or light.admitted or vip.admitted)
    # Tokens for one of them: only the head of the line, the priority call, goes.
    state, heavy = _admit(state, "heavy-2", 2_000, "heavy", 10.0)
    assert not heavy.admitted
    assert heavy.position == 2
    state, vip = _admit(state, "vip-1", 2_000, "vip", 10.0, lane="priority")
    assert vip.admitted
    state, light = _admit(state, "light-1", 2_000, "light", 19.0)  # waiters keep asking
    state, heavy = _admit(state, "heavy-2", 2_000, "heavy", 28.0)
    assert not (light.admitted or heavy.admitted), "the light user, who took less, is ahead"
    state, light = _admit(state, "light-1", 2_000, "light", 30.0)
    assert light.admitted
    state, heavy = _admit(state, "heavy-2", 2_000, "heavy", 50.0)
    assert heavy.admitted


def test_a_waiter_that_stops_asking_leaves_the_line_and_leaks_nothing() -> None:
    state, _ = _admit(fresh(LIMITS, 0.0), "a", 6_000, "u1", 0.0)
    state, dead = _admit(state, "dead", 100, "u2", 0.0)  # its replica then dies
    assert not dead.admitted
    state, alive = _admit(state, "alive", 100, "u3", STALE_SECONDS + 1)
    assert alive.admitted
    assert "dead" not in state.waiting


def test_the_providers_own_figures_lower_the_budget_never_raise_it() -> None:
    state = fresh(LIMITS, 0.0)
    assert learnt(state, tokens_per_minute=10_000, remaining_tokens=None) is state
    lowered = learnt(state, tokens_per_minute=3_000, remaining_tokens=500)
    assert (lowered.tokens_per_minute, lowered.tokens) == (3_000, 500)


def test_the_estimate_is_the_larger_of_the_prompt_and_the_output_cap() -> None:
    short = Prompt(("Our rules.",), "a profile")
    assert estimated_tokens("gpt-4o-mini", short, TrainingWeek) == TrainingWeek.max_output_tokens
    long = Prompt(("x" * 40_000,), "a profile")
    assert estimated_tokens("gpt-4o-mini", long, TrainingWeek) > 10_000


WEEK = PLAN.weeks[0]


def _week(key: str, prompt: Prompt, reply_type: type[Any]) -> pydantic.BaseModel:
    return WEEK


async def test_calls_wait_their_turn_and_are_made_on_their_lanes_tier() -> None:
    now = [0.0]
    tiers: list[str] = []

    def answer(key: str, prompt: Prompt, reply_type: type[Any]) -> pydantic.BaseModel:
        tiers.append(current_terms().tier)
        return _week(key, prompt, reply_type)

    budgets = MemoryBudgets()
    calls = Admitted(
        ScriptedCalls(answer, model="gpt-4o-mini"),
        budgets,
        Limits(tokens_per_minute=TrainingWeek.max_output_tokens * 60, requests_per_minute=600),
        stage="test",
        policy=TierPolicy(by_lane={"standard": "flex", "priority": "priority"}),
        clock=lambda: now[0],
    )
    with calling_for("u1", "priority"):
        await calls.call("k1", Prompt((), "p"), TrainingWeek)
    # gpt-4o-mini offers Priority but not Flex: a standard call goes on Standard.
    with calling_for("u2"):
        await calls.call("k2", Prompt((), "p"), TrainingWeek)
    assert tiers == ["priority", "default"]
    assert budgets.states["gpt-4o-mini"].use.keys() == {"u1", "u2"}


async def test_a_flex_call_refused_for_capacity_is_made_again_on_standard() -> None:
    asked: list[str] = []

    def answer(key: str, prompt: Prompt, reply_type: type[Any]) -> Any:
        asked.append(current_terms().tier)
        if current_terms().tier == "flex":
            return RetryLater("llm_capacity_unavailable")
        return _week(key, prompt, reply_type)

    calls = Admitted(
        ScriptedCalls(answer, model="gpt-5-mini"),
        None,
        None,
        stage="test",
        policy=TierPolicy(by_lane={"standard": "flex"}),
    )
    with calling_for(str(uuid.uuid4())):
        reply = await calls.call("k", Prompt((), "p"), TrainingWeek)
    assert reply.parsed.week == 1
    assert asked == ["flex", "default"]


def test_a_waiting_call_knows_its_place_and_the_wait_of_everything_ahead() -> None:
    state, _ = _admit(fresh(LIMITS, 0.0), "a", 6_000, "u1", 0.0)
    state, first = _admit(state, "b", 1_000, "u2", 0.0)
    state, second = _admit(state, "c", 500, "u3", 0.0)
    assert (first.position, first.expected_wait_seconds) == (0, pytest.approx(10.0))
    assert (second.position, second.expected_wait_seconds) == (1, pytest.approx(15.0))


async def test_a_call_tells_its_place_in_line_while_it_waits() -> None:
    need = TrainingWeek.max_output_tokens
    limits = Limits(tokens_per_minute=200 * need, requests_per_minute=6_000)  # one call's tokens in 0.3 s
    budgets = MemoryBudgets()
    budgets.states["gpt-4o-mini"] = BudgetState(
        at=time.time(), tokens=0, requests=100, tokens_per_minute=limits.tokens_per_minute, requests_per_minute=6_000
    )
    told: list[tuple[int, float]] = []

    async def in_line(position: int, expected: float) -> None:
        told.append((position, expected))

    calls = Admitted(ScriptedCalls(_week, model="gpt-4o-mini"), budgets, limits, stage="test")
    with calling_for("u1", on_wait=in_line):
        await calls.call("k", Prompt((), "p"), TrainingWeek)
    assert len(told) == 1
    assert told[0][0] == 1
    assert 0.1 < told[0][1] <= 0.31


class _Unreachable(MemoryBudgets):
    async def attempt(self, model: str, **_: Any) -> Any:
        raise nats.errors.ConnectionClosedError


async def test_a_budget_out_of_reach_lets_the_call_go() -> None:
    calls = Admitted(ScriptedCalls(_week, model="gpt-4o-mini"), _Unreachable(), LIMITS, stage="test")
    reply = await calls.call("k", Prompt((), "p"), TrainingWeek)
    assert reply.parsed == WEEK


async def test_a_line_whose_calls_all_went_leaves_at_once_rather_than_hold_the_others() -> None:
    need = TrainingWeek.max_output_tokens
    limits = Limits(tokens_per_minute=120 * need, requests_per_minute=6_000)  # one call's tokens in 0.5 s
    budgets = MemoryBudgets()
    budgets.states["gpt-4o-mini"] = BudgetState(
        at=time.time(), tokens=0, requests=100, tokens_per_minute=limits.tokens_per_minute, requests_per_minute=6_000
    )
    first = Admitted(ScriptedCalls(_week, model="gpt-4o-mini"), budgets, limits, stage="test")
    second = Admitted(ScriptedCalls(_week, model="gpt-4o-mini"), budgets, limits, stage="test")
    with calling_for("vip", "priority"):
        waiting = asyncio.create_task(first.call("k1", Prompt((), "p"), TrainingWeek))
    await asyncio.sleep(0.1)
    waiting.cancel()  # its request was cancelled while it waited at the head of the line
    with calling_for("u1"):
        # Admitted when the tokens are there (~0.5 s), not when the gone line turns stale (10 s).
        await asyncio.wait_for(second.call("k2", Prompt((), "p"), TrainingWeek), timeout=3)
    assert budgets.states["gpt-4o-mini"].waiting == {}
