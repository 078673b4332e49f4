"""The LLM simulator, driven by the real ``openai`` SDK over real HTTP against a real uvicorn server."""

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import httpx
import openai
import pydantic
import pytest
from openai.types.chat import ChatCompletionMessageParam

from contracts.plan import ExerciseProfile, PlanOutline, PlanOverview, PlanSkeleton, TrainingDay, WorkoutPlan
from devstack import free_port
from llm_simulator.catalogue import Joint, find_exercise
from tests.simulator_server import as_sent, reset_simulator, simulator_stats

MODEL = "gpt-4o-mini"
# Fast and deterministic unless a test says otherwise; every test starts from this.
BASELINE: dict[str, Any] = {
    "tokens_per_second": 0,
    "first_token_delay_seconds": 0,
    "p_rate_limit": 0,
    "p_quota": 0,
    "p_server_error": 0,
    "p_malformed": 0,
    "p_truncate": 0,
    "p_hang": 0,
    "p_refusal": 0,
    "retry_after_seconds": 2,
    "hang_seconds": 30,
    "seed": 7,
}
# What the services send: the models' strict wire schemas, under the models' names.
PLAN = as_sent(WorkoutPlan)
PROFILE = as_sent(ExerciseProfile)
PLAN_REQUEST = "I want to build muscle. I can train 4 days a week in a gym, intermediate level."


def _user(text: str) -> list[ChatCompletionMessageParam]:
    return [
        {"role": "system", "content": "You are an experienced strength and conditioning coach."},
        {"role": "user", "content": text},
    ]


@pytest.fixture(autouse=True)
async def fresh_simulator(admin: httpx.AsyncClient) -> None:
    await reset_simulator(admin, BASELINE)


async def _streamed_plan(llm: openai.AsyncOpenAI, text: str) -> WorkoutPlan:
    async with llm.chat.completions.stream(model=MODEL, messages=_user(text), response_format=PLAN) as stream:
        completion = await stream.get_final_completion()
    parsed = completion.choices[0].message.parsed
    assert parsed is not None
    return parsed


def _exercise_names(plan: WorkoutPlan) -> set[str]:
    return {item.name for week in plan.weeks for day in week.days for item in day.exercises}


async def test_streamed_plan_parses_as_workout_plan(llm: openai.AsyncOpenAI) -> None:
    async with llm.chat.completions.stream(
        model=MODEL,
        messages=_user(PLAN_REQUEST),
        response_format=PLAN,
        stream_options={"include_usage": True},
    ) as stream:
        completion = await stream.get_final_completion()

    plan = completion.choices[0].message.parsed
    assert isinstance(plan, WorkoutPlan)
    assert [w.week for w in plan.weeks] == list(range(1, 9))
    assert all(len(week.days) == 4 for week in plan.weeks)
    assert any("deload" in week.theme.lower() for week in plan.weeks)
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens > 500
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens


async def test_plan_honours_equipment_injuries_and_days(llm: openai.AsyncOpenAI) -> None:
    plan = await _streamed_plan(llm, "Three times a week, no equipment at home. I have a bad knee. Lose fat.")

    assert all(len(week.days) == 3 for week in plan.weeks)
    for name in _exercise_names(plan):
        exercise = find_exercise(name)
        assert exercise is not None, name
        assert not exercise.needs, f"{name} needs equipment"
        assert Joint.KNEE not in exercise.stresses, f"{name} loads the knee"


@pytest.mark.parametrize(
    ("request_text", "days"),
    [
        ("Build muscle, 3x per week, dumbbells only.", 3),
        ("I can train three times a week.", 3),
        ("Strength please: 5 days a week, barbell gym.", 5),
        ("Twice a week is all I have.", 2),
        ('{"goal": "fat loss", "days_per_week": 6, "equipment": "home"}', 6),
    ],
)
async def test_plan_has_the_requested_days_per_week(llm: openai.AsyncOpenAI, request_text: str, days: int) -> None:
    plan = await _streamed_plan(llm, request_text)

    assert {len(week.days) for week in plan.weeks} == {days}


async def _parsed(llm: openai.AsyncOpenAI, system: str, text: str, reply_type: type[Any]) -> Any:
    completion = await llm.chat.completions.parse(
        model=MODEL,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": text}],
        response_format=as_sent(reply_type),
    )
    parsed = completion.choices[0].message.parsed
    assert parsed is not None
    return parsed


async def test_outline_overview_and_day_parts_are_cut_from_one_plan_as_their_prompts_ask(
    llm: openai.AsyncOpenAI,
) -> None:
    skeleton: PlanSkeleton = await _parsed(llm, "Write the skeleton.", PLAN_REQUEST, PlanSkeleton)
    outline: PlanOutline = await _parsed(llm, "Write the outline.", PLAN_REQUEST, PlanOutline)
    overview: PlanOverview = await _parsed(llm, "Write the overview.", PLAN_REQUEST, PlanOverview)
    joined = PlanSkeleton.of(outline, overview)
    assert [f for f in PlanSkeleton.model_fields if getattr(joined, f) != getattr(skeleton, f)] == []
    # Week 5's second day, some of its exercises in another order, below an outline naming week 1.
    block = next(b for b in outline.blocks if 5 in b.weeks)
    day = block.days[1]
    wanted = list(reversed(day.exercises[:2]))
    brief = (
        f"Outline (week 1 first): {outline.model_dump_json()}\n"
        f"Write part of week 5 of the 8-week programme: training day {day.day} ({day.focus}).\n"
        f"Only these exercises, in this order: {'; '.join(wanted)}"
    )

    part: TrainingDay = await _parsed(llm, brief, PLAN_REQUEST, TrainingDay)

    assert part.day == day.day
    assert [item.name for item in part.exercises] == wanted
    whole: TrainingDay = await _parsed(llm, brief.rsplit("\n", 1)[0], PLAN_REQUEST, TrainingDay)
    assert [item.name for item in whole.exercises] == day.exercises
    assert {item.name: item for item in whole.exercises}[wanted[0]] == part.exercises[0]


async def test_two_plans_differ_but_share_exercises(llm: openai.AsyncOpenAI) -> None:
    first = await _streamed_plan(llm, PLAN_REQUEST)
    second = await _streamed_plan(llm, PLAN_REQUEST)

    assert first != second
    assert _exercise_names(first) & _exercise_names(second)


async def test_parsed_profile_describes_the_requested_exercise(llm: openai.AsyncOpenAI) -> None:
    completion = await llm.chat.completions.parse(
        model=MODEL,
        messages=_user("Describe this exercise for the app.\nExercise: Barbell Back Squat"),
        response_format=PROFILE,
    )

    profile = completion.choices[0].message.parsed
    assert isinstance(profile, ExerciseProfile)
    assert profile.name == "Barbell Back Squat"
    assert "quadriceps" in profile.primary_muscles
    assert 3 <= len(profile.instructions) <= 6
    assert "barbell" in profile.equipment
    assert profile.difficulty == "intermediate"


async def test_unknown_exercise_gets_a_sensible_profile(llm: openai.AsyncOpenAI) -> None:
    completion = await llm.chat.completions.parse(
        model=MODEL, messages=_user("Exercise: Zercher Squat"), response_format=PROFILE
    )

    profile = completion.choices[0].message.parsed
    assert profile is not None
    assert profile.name == "Zercher Squat"
    assert "quadriceps" in profile.primary_muscles


async def test_any_other_schema_gets_a_conforming_document(llm: openai.AsyncOpenAI) -> None:
    class Meal(pydantic.BaseModel):
        name: str
        calories: int = pydantic.Field(ge=100, le=900)
        course: Literal["starter", "main", "dessert"]
        ingredients: list[str] = pydantic.Field(min_length=2, max_length=4)
        pairing: "Meal | None"

    completion = await llm.chat.completions.parse(model=MODEL, messages=_user("Plan dinner"), response_format=Meal)

    assert isinstance(completion.choices[0].message.parsed, Meal)


async def test_plain_create_returns_an_openai_chat_completion(llm: openai.AsyncOpenAI) -> None:
    completion = await llm.chat.completions.create(model="gpt-4.1-nano", messages=_user("How often should I train?"))

    assert completion.id.startswith("chatcmpl-")
    assert completion.object == "chat.completion"
    assert completion.model == "gpt-4.1-nano"
    choice = completion.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content
    assert choice.message.refusal is None
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens > 0


async def test_json_object_format_gets_a_json_object(llm: openai.AsyncOpenAI) -> None:
    completion = await llm.chat.completions.create(
        model=MODEL, messages=_user("Answer in JSON"), response_format={"type": "json_object"}
    )

    assert isinstance(json.loads(completion.choices[0].message.content or ""), dict)


async def test_streamed_chunks_follow_openai_order_with_usage_last(llm: openai.AsyncOpenAI) -> None:
    stream = await llm.chat.completions.create(
        model=MODEL, messages=_user("Hi"), stream=True, stream_options={"include_usage": True}
    )
    chunks = [chunk async for chunk in stream]

    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens > 0
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


async def test_max_tokens_cuts_the_reply_with_finish_reason_length(llm: openai.AsyncOpenAI) -> None:
    completion = await llm.chat.completions.create(model=MODEL, messages=_user("Tell me a lot"), max_tokens=5)

    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens <= 5


async def test_pacing_holds_back_a_slow_model(llm: openai.AsyncOpenAI, admin: httpx.AsyncClient) -> None:
    rate, delay = 400, 0.2
    await admin.patch("/_sim/config", json={"tokens_per_second": rate, "first_token_delay_seconds": delay})
    messages = _user("Exercise: Dumbbell Bench Press")

    started = time.monotonic()
    async with llm.chat.completions.stream(
        model=MODEL, messages=messages, response_format=PROFILE, stream_options={"include_usage": True}
    ) as stream:
        deltas = [event async for event in stream if event.type == "content.delta"]
        streamed = await stream.get_final_completion()
    streamed_for = time.monotonic() - started
    started = time.monotonic()
    answered = await llm.chat.completions.parse(model=MODEL, messages=messages, response_format=PROFILE)
    answered_after = time.monotonic() - started

    assert streamed.usage is not None
    assert answered.usage is not None
    # Lower bounds only: a loaded machine may be slower, never faster.
    assert streamed_for >= 0.8 * (delay + (streamed.usage.completion_tokens - 1) / rate)
    assert answered_after >= 0.8 * (delay + answered.usage.completion_tokens / rate)
    assert streamed.usage.completion_tokens > 100
    assert len(deltas) > 5


async def test_rate_limit_fault_raises_rate_limit_error_with_retry_after(llm: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        await llm.chat.completions.create(model=MODEL, messages=_user("[[sim:fault=rate_limit]] hello"))

    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.type == "requests"
    assert caught.value.response.headers["retry-after"] == "2"
    assert caught.value.response.headers["retry-after-ms"] == "2000"


async def test_quota_fault_raises_rate_limit_error_with_insufficient_quota(llm: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as caught:
        await llm.chat.completions.parse(
            model=MODEL, messages=_user("[[sim:fault=quota]]\nExercise: Plank"), response_format=PROFILE
        )

    assert caught.value.code == "insufficient_quota"
    assert caught.value.type == "insufficient_quota"


async def test_server_error_fault_raises_internal_server_error(llm: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        async with llm.chat.completions.stream(
            model=MODEL, messages=_user(f"[[sim:fault=server_error]] {PLAN_REQUEST}"), response_format=PLAN
        ) as stream:
            await stream.get_final_completion()

    assert caught.value.status_code == 500


async def test_malformed_fault_fails_validation_when_parsed(llm: openai.AsyncOpenAI) -> None:
    messages = _user("[[sim:fault=malformed]]\nExercise: Plank")
    with pytest.raises(pydantic.ValidationError):
        await llm.chat.completions.parse(model=MODEL, messages=messages, response_format=PROFILE)
    with pytest.raises(pydantic.ValidationError):
        async with llm.chat.completions.stream(model=MODEL, messages=messages, response_format=PROFILE) as stream:
            await stream.get_final_completion()


async def test_truncate_fault_raises_length_finish_reason_error(llm: openai.AsyncOpenAI) -> None:
    messages = _user(f"[[sim:fault=truncate]] {PLAN_REQUEST}")
    with pytest.raises(openai.LengthFinishReasonError):
        await llm.chat.completions.parse(model=MODEL, messages=messages, response_format=PLAN)
    with pytest.raises(openai.LengthFinishReasonError):
        async with llm.chat.completions.stream(model=MODEL, messages=messages, response_format=PLAN) as stream:
            await stream.get_final_completion()


async def test_hang_fault_times_out_and_the_abandoned_call_is_counted(
    llm: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    impatient = llm.with_options(timeout=0.5)
    messages = _user("[[sim:fault=hang]]\nExercise: Plank")

    with pytest.raises(openai.APITimeoutError):
        await impatient.chat.completions.create(model=MODEL, messages=messages)
    stream = await impatient.chat.completions.create(model=MODEL, messages=messages, stream=True)
    with pytest.raises(openai.APITimeoutError):
        async for _ in stream:
            pass

    stats = await _eventually(admin, lambda s: s["abandoned_total"] == 2)
    assert stats["faults_by_kind"] == {"hang": 2}
    assert stats["completions_total"] == 0


async def test_client_disconnect_stops_a_slow_generation(llm: openai.AsyncOpenAI, admin: httpx.AsyncClient) -> None:
    await admin.patch("/_sim/config", json={"tokens_per_second": 20})
    stream = await llm.chat.completions.create(model=MODEL, messages=_user("Exercise: Plank"), stream=True)
    async for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            break
    await stream.close()

    stats = await _eventually(admin, lambda s: s["abandoned_total"] == 1)
    assert stats["completions_total"] == 0


async def test_stats_count_profile_completions_per_exercise(llm: openai.AsyncOpenAI, admin: httpx.AsyncClient) -> None:
    for name in ("Barbell Back Squat", "Romanian Deadlift", "Barbell Back Squat"):
        await llm.chat.completions.parse(model=MODEL, messages=_user(f"Exercise: {name}"), response_format=PROFILE)
    await _streamed_plan(llm, PLAN_REQUEST)
    with pytest.raises(pydantic.ValidationError):
        await llm.chat.completions.parse(
            model=MODEL, messages=_user("[[sim:fault=malformed]]\nExercise: Plank"), response_format=PROFILE
        )

    stats = await simulator_stats(admin)
    assert stats["requests_total"] == 5
    assert stats["completions_total"] == 4
    assert stats["completions_by_schema"] == {"ExerciseProfile": 3, "WorkoutPlan": 1}
    assert stats["profiles_by_exercise"] == {"Barbell Back Squat": 2, "Romanian Deadlift": 1}
    assert stats["faults_by_kind"] == {"malformed": 1}
    assert stats["prompt_tokens_total"] > 0
    assert stats["completion_tokens_total"] > 0

    await admin.post("/_sim/reset")
    assert (await simulator_stats(admin))["requests_total"] == 0


async def test_patched_config_changes_behaviour(llm: openai.AsyncOpenAI, admin: httpx.AsyncClient) -> None:
    patched = await admin.patch("/_sim/config", json={"p_server_error": 1.0})
    assert patched.status_code == 200
    assert (await admin.get("/_sim/config")).json()["p_server_error"] == 1.0

    with pytest.raises(openai.InternalServerError):
        await llm.chat.completions.create(model=MODEL, messages=_user("Hi"))
    rejected = await admin.patch("/_sim/config", json={"p_quota": 0.5})
    assert rejected.status_code == 422
    assert (await admin.patch("/_sim/config", json={"p_server_error": 0})).status_code == 200
    await llm.chat.completions.create(model=MODEL, messages=_user("Hi"))

    assert (await simulator_stats(admin))["faults_by_kind"] == {"server_error": 1}


async def test_missing_api_key_is_rejected_with_401(admin: httpx.AsyncClient) -> None:
    response = await admin.post("/v1/chat/completions", json={"model": MODEL, "messages": _user("Hi")})

    assert response.status_code == 401
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error"


async def test_models_are_listed(llm: openai.AsyncOpenAI) -> None:
    models = await llm.models.list()

    assert {m.id for m in models.data} >= {"gpt-4o-mini", "gpt-4.1-mini"}


def test_cli_reads_knobs_from_flags_and_environment() -> None:
    port = free_port()
    env = {**os.environ, "SIM_P_HANG": "0.25", "SIM_MODELS": "gpt-5,o3", "SIM_TOKENS_PER_SECOND": "99"}
    process = subprocess.Popen(
        [sys.executable, "-m", "llm_simulator", "--port", str(port), "--tokens-per-second", "123"],
        env=env,
        cwd=Path(__file__).resolve().parents[2],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        config = _wait_for_config(f"http://127.0.0.1:{port}", process)
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=10)

    assert config["tokens_per_second"] == 123
    assert config["p_hang"] == 0.25
    assert config["models"] == ["gpt-5", "o3"]
    assert f"http://127.0.0.1:{port}/v1" in stderr.decode()


def _wait_for_config(url: str, process: "subprocess.Popen[bytes]") -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        assert process.poll() is None, "the simulator exited"
        try:
            body: dict[str, Any] = httpx.get(f"{url}/_sim/config", timeout=1).json()
        except httpx.TransportError:
            assert time.monotonic() < deadline, "the simulator did not start"
            time.sleep(0.05)
            continue
        return body


async def _eventually(
    admin: httpx.AsyncClient, condition: Callable[[dict[str, Any]], bool], timeout: float = 3.0
) -> dict[str, Any]:
    """The stats once ``condition`` holds: the server notices a disconnect a moment after the client leaves."""
    deadline = time.monotonic() + timeout
    while True:
        stats = await simulator_stats(admin)
        if condition(stats):
            return stats
        assert time.monotonic() < deadline, f"stats never matched: {stats}"
        await asyncio.sleep(0.05)


REFUSAL = "I'm sorry, I can't help with that request."


async def test_refusal_fault_sets_message_refusal_and_nulls_content(
    llm: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    completion = await llm.chat.completions.create(model=MODEL, messages=_user(f"[[sim:fault=refusal]] {PLAN_REQUEST}"))

    choice = completion.choices[0]
    assert choice.message.refusal == REFUSAL
    assert choice.message.content is None
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    stats = await simulator_stats(admin)
    assert stats["faults_by_kind"] == {"refusal": 1}
    assert stats["completions_total"] == 0
    assert stats["completions_by_schema"] == {}
    assert stats["completion_tokens_total"] == completion.usage.completion_tokens > 0


async def test_streamed_refusal_arrives_in_refusal_deltas(llm: openai.AsyncOpenAI, admin: httpx.AsyncClient) -> None:
    stream = await llm.chat.completions.create(
        model=MODEL,
        messages=_user(f"[[sim:fault=refusal]] {PLAN_REQUEST}"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]

    assert chunks[0].choices[0].delta.role == "assistant"
    assert "".join(c.choices[0].delta.refusal or "" for c in chunks if c.choices) == REFUSAL
    assert all(c.choices[0].delta.content is None for c in chunks if c.choices)
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    stats = await simulator_stats(admin)
    assert stats["faults_by_kind"] == {"refusal": 1}
    assert stats["completions_total"] == 0
    assert stats["abandoned_total"] == 0


async def test_refusal_fault_parses_to_a_refusal_without_parsed(llm: openai.AsyncOpenAI) -> None:
    messages = _user(f"[[sim:fault=refusal]] {PLAN_REQUEST}")
    parsed = await llm.chat.completions.parse(model=MODEL, messages=messages, response_format=PLAN)

    assert parsed.choices[0].message.refusal == REFUSAL
    assert parsed.choices[0].message.parsed is None
    async with llm.chat.completions.stream(model=MODEL, messages=messages, response_format=PLAN) as stream:
        streamed = await stream.get_final_completion()
    assert streamed.choices[0].message.refusal == REFUSAL
    assert streamed.choices[0].message.parsed is None


async def test_refusal_probability_draws_refusals_and_shares_the_one_draw(
    llm: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    (await admin.patch("/_sim/config", json={"p_refusal": 1})).raise_for_status()
    completion = await llm.chat.completions.create(model=MODEL, messages=_user("Any tips?"))
    assert completion.choices[0].message.refusal == REFUSAL
    assert (await simulator_stats(admin))["faults_by_kind"] == {"refusal": 1}

    too_much = await admin.patch("/_sim/config", json={"p_refusal": 0.6, "p_malformed": 0.6})
    assert too_much.status_code == 422
    assert (await admin.get("/_sim/config")).json()["p_refusal"] == 1


@pytest.mark.parametrize("rate", [0, 4000], ids=["unpaced", "paced"])
async def test_a_stream_can_come_in_a_chunk_per_token_or_two_as_a_providers_does(
    llm: openai.AsyncOpenAI, admin: httpx.AsyncClient, rate: int
) -> None:
    await admin.patch(
        "/_sim/config", json={"tokens_per_second": rate, "first_token_delay_seconds": 0, "stream_chunk_tokens": 2}
    )
    stream = await llm.chat.completions.create(
        model=MODEL, messages=_user("Exercise: Dumbbell Bench Press"), stream=True
    )
    pieces = [chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices]
    text = "".join(pieces)

    assert len(text) > 100
    assert max(len(piece) for piece in pieces) <= 8  # 2 tokens of ~4 characters
    assert len(pieces) >= len(text) // 8
