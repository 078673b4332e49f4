"""The simulator's Responses API, driven by the real ``openai`` SDK over real HTTP against uvicorn."""

import asyncio
import json
import time
from typing import Any

import httpx
import openai
import pytest
from openai.types.responses import Response, ResponseInputParam

from contracts.plan import WorkoutPlan
from service_runtime.strict_schema import responses_text_format
from tests.simulator_server import as_sent, reset_simulator, simulator_stats

MODEL = "gpt-4o-mini"
# A plan (~5k tokens) takes about half a second at this pace: slow enough to see it in progress.
BASELINE: dict[str, Any] = {
    "tokens_per_second": 10000,
    "first_token_delay_seconds": 0.1,
    "p_rate_limit": 0,
    "p_quota": 0,
    "p_server_error": 0,
    "p_malformed": 0,
    "p_truncate": 0,
    "p_hang": 0,
    "p_refusal": 0,
    "retry_after_seconds": 2,
    "hang_seconds": 30,
    "unstored_background_seconds": 600,
    "seed": 11,
}
# What the services send: the plan's strict wire schema, under its name.
PLAN_FORMAT = responses_text_format(WorkoutPlan)
PLAN = as_sent(WorkoutPlan)
AUTH = {"Authorization": "Bearer sim"}


def _prompt(text: str) -> ResponseInputParam:
    return [
        {"role": "system", "content": "You are an experienced strength and conditioning coach."},
        {"role": "user", "content": [{"type": "input_text", "text": text}]},
    ]


@pytest.fixture(autouse=True)
async def fresh_simulator(admin: httpx.AsyncClient) -> None:
    await reset_simulator(admin, BASELINE)


async def _background_plan(llm: openai.AsyncOpenAI, text: str) -> Response:
    return await llm.responses.create(
        model=MODEL, input=_prompt(text), text={"format": PLAN_FORMAT}, background=True, store=True
    )


async def _finished(llm: openai.AsyncOpenAI, response_id: str, timeout: float = 10) -> Response:
    deadline = time.monotonic() + timeout
    while True:
        response = await llm.responses.retrieve(response_id)
        if response.status not in ("queued", "in_progress"):
            return response
        assert time.monotonic() < deadline, f"response still {response.status}"
        await asyncio.sleep(0.05)


async def test_background_plan_goes_queued_in_progress_completed_and_validates(
    llm: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    created = await _background_plan(llm, "I want to build muscle, 4 days a week in a gym.")
    assert (created.status, created.background, created.output) == ("queued", True, [])
    assert created.id.startswith("resp_")
    await asyncio.sleep(0.05)
    assert (await llm.responses.retrieve(created.id)).status == "in_progress"

    done = await _finished(llm, created.id)

    assert done.status == "completed"
    assert done.error is None
    assert done.incomplete_details is None
    plan = WorkoutPlan.model_validate_json(done.output_text)
    assert {len(week.days) for week in plan.weeks} == {4}
    assert done.usage is not None
    assert done.usage.output_tokens > 1000
    assert done.usage.total_tokens == done.usage.input_tokens + done.usage.output_tokens
    stats = await simulator_stats(admin)
    assert stats["responses_created_total"] == 1
    assert stats["completions_by_schema"] == {"WorkoutPlan": 1}


async def test_wire_objects_validate_as_the_sdk_response_model(
    llm: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    created = await _background_plan(llm, "3x per week, dumbbells only.")
    queued = await admin.get(f"/v1/responses/{created.id}", headers=AUTH)
    await _finished(llm, created.id)
    completed = await admin.get(f"/v1/responses/{created.id}", headers=AUTH)

    # Strict validation, not the SDK's lenient construction: every required field is there.
    for raw in (queued.json(), completed.json()):
        Response.model_validate(raw)
    body = completed.json()
    (message,) = body["output"]
    assert message["type"] == "message"
    assert message["status"] == "completed"
    assert [part["type"] for part in message["content"]] == ["output_text"]
    assert body["text"]["format"]["name"] == "WorkoutPlan"
    assert set(body["usage"]) == {
        "input_tokens",
        "input_tokens_details",
        "output_tokens",
        "output_tokens_details",
        "total_tokens",
    }


async def test_retrieving_an_unknown_response_is_not_found(llm: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as raised:
        await llm.responses.retrieve("resp_nobody_made_this")
    assert raised.value.status_code == 404


async def test_a_cancelled_response_stays_cancelled_and_is_not_a_completion(
    llm: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    (await admin.patch("/_sim/config", json={"tokens_per_second": 2000})).raise_for_status()
    created = await _background_plan(llm, "3 days a week at home.")

    cancelled = await llm.responses.cancel(created.id)
    assert cancelled.status == "cancelled"
    assert cancelled.output == []
    await asyncio.sleep(0.3)  # past the first token: a generation left running would move on

    assert (await llm.responses.retrieve(created.id)).status == "cancelled"
    Response.model_validate((await admin.get(f"/v1/responses/{created.id}", headers=AUTH)).json())
    again = await llm.responses.cancel(created.id)
    assert again.status == "cancelled"
    stats = await simulator_stats(admin)
    assert stats["responses_created_total"] == 1
    assert stats["responses_cancelled_total"] == 1
    assert stats["completions_total"] == 0
    assert stats["completions_by_schema"] == {}


async def test_truncate_fault_makes_an_incomplete_response(llm: openai.AsyncOpenAI, admin: httpx.AsyncClient) -> None:
    created = await _background_plan(llm, "[[sim:fault=truncate]] 3x per week.")
    done = await _finished(llm, created.id)

    assert done.status == "incomplete"
    assert done.incomplete_details is not None
    assert done.incomplete_details.reason == "max_output_tokens"
    Response.model_validate((await admin.get(f"/v1/responses/{created.id}", headers=AUTH)).json())
    with pytest.raises(ValueError, match="validation error"):
        WorkoutPlan.model_validate_json(done.output_text)
    stats = await simulator_stats(admin)
    assert stats["completions_total"] == 0
    assert stats["faults_by_kind"] == {"truncate": 1}


async def test_malformed_fault_garbles_one_retrieval_and_the_response_stays_whole(
    llm: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    # In background mode ``malformed`` is a fault on the wire: the first retrieval that finds the
    # response finished gets a body that is not JSON; the response is whole, and billed once.
    created = await _background_plan(llm, "[[sim:fault=malformed]] 3x per week.")
    await asyncio.sleep(1.0)  # finished (~0.5 s at this pace), not yet retrieved

    garbled = await admin.get(f"/v1/responses/{created.id}", headers=AUTH)
    assert garbled.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        garbled.json()
    done = await llm.responses.retrieve(created.id)

    assert done.status == "completed"
    WorkoutPlan.model_validate_json(done.output_text)
    stats = await simulator_stats(admin)
    assert stats["faults_by_kind"] == {"malformed": 1}
    assert stats["completions_by_schema"] == {"WorkoutPlan": 1}
    assert stats["billed_by_schema"] == {"WorkoutPlan": 1}
    assert stats["billed_forced_by_schema"] == {"WorkoutPlan": 1}


async def test_server_error_fault_makes_a_failed_background_response(
    llm: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    created = await _background_plan(llm, "[[sim:fault=server_error]] 3x per week.")
    assert created.status == "queued"

    done = await _finished(llm, created.id)

    assert done.status == "failed"
    assert done.error is not None
    assert done.error.code == "server_error"
    assert done.output == []
    Response.model_validate((await admin.get(f"/v1/responses/{created.id}", headers=AUTH)).json())


async def test_a_stuck_queued_response_stays_queued_for_hang_seconds_then_completes(
    llm: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    (await admin.patch("/_sim/config", json={"hang_seconds": 0.5})).raise_for_status()
    created = await _background_plan(llm, "[[sim:fault=stuck_queued]] 3x per week.")
    await asyncio.sleep(0.3)

    assert (await llm.responses.retrieve(created.id)).status == "queued"
    done = await _finished(llm, created.id)

    assert done.status == "completed"
    WorkoutPlan.model_validate_json(done.output_text)
    stats = await simulator_stats(admin)
    assert stats["faults_by_kind"] == {"stuck_queued": 1}
    assert stats["completions_by_schema"] == {"WorkoutPlan": 1}


async def test_a_response_cancelled_while_still_queued_is_not_billed(
    llm: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    (await admin.patch("/_sim/config", json={"p_stuck_queued": 1.0})).raise_for_status()
    created = await _background_plan(llm, "3x per week.")
    await asyncio.sleep(0.1)
    assert (await llm.responses.retrieve(created.id)).status == "queued"

    cancelled = await llm.responses.cancel(created.id)

    assert cancelled.status == "cancelled"
    stats = await simulator_stats(admin)
    assert stats["faults_by_kind"] == {"stuck_queued": 1}
    assert stats["responses_cancelled_total"] == 1
    assert stats["billed_by_schema"] == {}


async def test_quota_fault_refuses_the_create_call(llm: openai.AsyncOpenAI, admin: httpx.AsyncClient) -> None:
    with pytest.raises(openai.RateLimitError) as raised:
        await _background_plan(llm, "[[sim:fault=quota]] 3x per week.")
    assert raised.value.code == "insufficient_quota"
    assert (await simulator_stats(admin))["responses_created_total"] == 0


async def test_rate_limit_fault_refuses_the_create_call_with_retry_after(llm: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as raised:
        await _background_plan(llm, "[[sim:fault=rate_limit]] 3x per week.")
    assert raised.value.code == "rate_limit_exceeded"
    assert raised.value.response.headers["retry-after"] == "2"


async def test_a_plain_create_answers_synchronously_and_parses(
    llm: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    parsed = await llm.responses.parse(
        model=MODEL, input="Build strength, 3 days a week.", instructions="Be a coach.", text_format=PLAN
    )

    assert parsed.status == "completed"
    assert isinstance(parsed.output_parsed, WorkoutPlan)
    assert (await llm.responses.retrieve(parsed.id)).output_text == parsed.output_text
    stats = await simulator_stats(admin)
    assert stats["responses_created_total"] == 1
    assert stats["completions_by_schema"] == {"WorkoutPlan": 1}


async def test_max_output_tokens_cuts_a_plain_response(llm: openai.AsyncOpenAI) -> None:
    response = await llm.responses.create(model=MODEL, input="Any tips?", max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None
    assert response.usage.output_tokens == 16
    assert len(response.output_text) <= 16 * 4


async def test_forgetting_responses_behaves_like_a_restart(llm: openai.AsyncOpenAI, admin: httpx.AsyncClient) -> None:
    created = await _background_plan(llm, "3x per week.")

    assert (await admin.delete("/_sim/responses")).json() == {"forgotten": 1}

    with pytest.raises(openai.NotFoundError):
        await llm.responses.retrieve(created.id)
    stats = await simulator_stats(admin)
    assert stats["abandoned_total"] == 1
    assert stats["completions_total"] == 0


async def test_background_needs_a_key(simulator_url: str, admin: httpx.AsyncClient) -> None:
    body = {"model": MODEL, "input": "hi", "background": True}
    anonymous = await admin.post("/v1/responses", json=body)
    assert anonymous.status_code == 401


async def test_an_unstored_background_response_is_retrievable_only_for_the_polling_window(
    llm: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    (await admin.patch("/_sim/config", json={"unstored_background_seconds": 2})).raise_for_status()
    created = await llm.responses.create(
        model=MODEL, input=_prompt("3x per week."), text={"format": PLAN_FORMAT}, background=True, store=False
    )

    done = await _finished(llm, created.id)
    assert done.status == "completed"
    assert done.store is False
    await asyncio.sleep(2.5)
    with pytest.raises(openai.NotFoundError):
        await llm.responses.retrieve(created.id)


REFUSAL = "I'm sorry, I can't help with that request."


async def test_refusal_fault_completes_with_a_refusal_part(llm: openai.AsyncOpenAI, admin: httpx.AsyncClient) -> None:
    created = await _background_plan(llm, "[[sim:fault=refusal]] 3x per week.")
    assert created.status == "queued"

    done = await _finished(llm, created.id)

    assert done.status == "completed"
    assert done.error is None
    [message] = done.output
    assert message.type == "message"
    [part] = message.content
    assert part.type == "refusal"
    assert part.refusal == REFUSAL
    assert done.output_text == ""
    Response.model_validate((await admin.get(f"/v1/responses/{created.id}", headers=AUTH)).json())
    stats = await simulator_stats(admin)
    assert stats["faults_by_kind"] == {"refusal": 1}
    assert stats["completions_total"] == 0
    assert stats["completion_tokens_total"] > 0


async def test_a_plain_refused_create_parses_to_no_output(llm: openai.AsyncOpenAI, admin: httpx.AsyncClient) -> None:
    parsed = await llm.responses.parse(
        model=MODEL, input="[[sim:fault=refusal]] Build strength.", instructions="Be a coach.", text_format=PLAN
    )

    assert parsed.status == "completed"
    assert parsed.output_parsed is None
    [message] = parsed.output
    assert message.type == "message"
    assert [(part.type, getattr(part, "refusal", None)) for part in message.content] == [("refusal", REFUSAL)]
    assert (await simulator_stats(admin))["faults_by_kind"] == {"refusal": 1}
