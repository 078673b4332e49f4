"""The skeleton shown first (a waitpoint), through the real services and the simulator: confirmed,
adjusted, left to time out, and cancelled, each ending as described; a cancel at the checkpoint
costs the skeleton and nothing more."""

import asyncio
import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from services.planner.quality import loads_joint
from tests.e2e.conftest import Stack
from tests.e2e.test_pipeline import SEED_PROFILE, wait_for_end

pytestmark = pytest.mark.e2e


async def submit(client: httpx.AsyncClient, stack: Stack, user: uuid.UUID, review_seconds: int) -> str:
    response = await client.post(
        f"{stack.gateway_url}/v1/plans",
        headers={"Authorization": f"Bearer {stack.token(user)}"},
        json={"userProfile": SEED_PROFILE, "reviewSkeletonSeconds": review_seconds},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["request_id"])


async def shown(
    client: httpx.AsyncClient, stack: Stack, request_id: str, user: uuid.UUID, round_: int = 0
) -> dict[str, Any]:
    """The skeleton once the request waits with it (the given round)."""
    headers = {"Authorization": f"Bearer {stack.token(user)}"}
    async with asyncio.timeout(30):
        while True:
            response = await client.get(f"{stack.gateway_url}/v1/requests/{request_id}/skeleton", headers=headers)
            assert response.status_code == 200, response.text
            review: dict[str, Any] = response.json()
            if review["stage"] == "waiting" and review["round"] == round_:
                return review
            assert review["status"] == "processing", (review, stack.log_tail())
            await asyncio.sleep(0.1)


async def decide(
    client: httpx.AsyncClient, stack: Stack, request_id: str, user: uuid.UUID, body: dict[str, str]
) -> httpx.Response:
    return await client.post(
        f"{stack.gateway_url}/v1/requests/{request_id}/skeleton",
        headers={"Authorization": f"Bearer {stack.token(user)}"},
        json=body,
    )


async def ledger(stack: Stack, request_id: str) -> tuple[int, float, float]:
    """The request's paid calls, their cost, and the cost on the request."""
    conn = await asyncpg.connect(stack.database_url)
    try:
        calls = await conn.fetch("SELECT cost_usd FROM llm_calls WHERE request_id = $1", uuid.UUID(request_id))
        cost = await conn.fetchval("SELECT cost_usd FROM workout_plan_requests WHERE id = $1", uuid.UUID(request_id))
    finally:
        await conn.close()
    return len(calls), float(sum(c["cost_usd"] for c in calls)), float(cost)


def exercises(outline: dict[str, Any]) -> set[str]:
    return {name for block in outline["blocks"] for day in block["days"] for name in day["exercises"]}


async def test_a_confirmed_skeleton_is_the_one_the_weeks_follow(stack: Stack) -> None:
    user = uuid.uuid4()
    async with httpx.AsyncClient(timeout=30) as client:
        request_id = await submit(client, stack, user, review_seconds=600)
        review = await shown(client, stack, request_id, user)
        assert review["review_until"] and review["outline"]["days_per_week"] == 3
        # Nothing more is written while the user looks: the skeleton's call alone is paid.
        await asyncio.sleep(1)
        assert (await ledger(stack, request_id))[0] == 1
        snapshot = (
            await client.get(f"{stack.gateway_url}/v1/requests/{request_id}", headers=_auth(stack, user))
        ).json()
        assert snapshot["stage"] == "waiting"

        confirmed = await decide(client, stack, request_id, user, {"decision": "confirm"})
        assert confirmed.status_code == 200, confirmed.text
        again = await decide(client, stack, request_id, user, {"decision": "confirm"})
        assert again.status_code == 409 and again.json()["error"]["code"] == "not_waiting"
        ended = await wait_for_end(client, stack, request_id, user)
        assert ended["status"] == "completed", stack.log_tail()
        plan = (await client.get(f"{stack.gateway_url}/v1/plans/{ended['plan_id']}", headers=_auth(stack, user))).json()
    used = {entry["exercise"]["name"] for week in plan["weeks"] for day in week["days"] for entry in day["entries"]}
    assert used == exercises(review["outline"])


async def test_an_adjusted_skeleton_is_written_again_shown_again_and_followed(stack: Stack) -> None:
    user = uuid.uuid4()
    async with httpx.AsyncClient(timeout=30) as client:
        request_id = await submit(client, stack, user, review_seconds=600)
        first = await shown(client, stack, request_id, user)
        assert any(loads_joint(name, "knee") for name in exercises(first["outline"]))

        adjusted = await decide(
            client, stack, request_id, user, {"decision": "adjust", "instruction": "no squats, my knee hurts"}
        )
        assert adjusted.status_code == 200, adjusted.text
        second = await shown(client, stack, request_id, user, round_=1)
        assert second["adjustments"] == ["no squats, my knee hurts"]
        assert not any(loads_joint(name, "knee") for name in exercises(second["outline"]))

        assert (await decide(client, stack, request_id, user, {"decision": "confirm"})).status_code == 200
        ended = await wait_for_end(client, stack, request_id, user)
        assert ended["status"] == "completed", stack.log_tail()
        plan = (await client.get(f"{stack.gateway_url}/v1/plans/{ended['plan_id']}", headers=_auth(stack, user))).json()
    used = {entry["exercise"]["name"] for week in plan["weeks"] for day in week["days"] for entry in day["entries"]}
    assert used == exercises(second["outline"])


async def test_a_skeleton_left_alone_goes_on_by_itself_once_its_time_runs_out(stack: Stack) -> None:
    user = uuid.uuid4()
    async with httpx.AsyncClient(timeout=30) as client:
        request_id = await submit(client, stack, user, review_seconds=2)
        await shown(client, stack, request_id, user)
        ended = await wait_for_end(client, stack, request_id, user, timeout=60)
    assert ended["status"] == "completed", stack.log_tail()


async def test_a_cancel_at_the_checkpoint_costs_the_skeleton_and_nothing_more(stack: Stack) -> None:
    user = uuid.uuid4()
    async with httpx.AsyncClient(timeout=30) as client:
        request_id = await submit(client, stack, user, review_seconds=600)
        await shown(client, stack, request_id, user)
        at_checkpoint = await ledger(stack, request_id)
        cancelled = await client.delete(f"{stack.gateway_url}/v1/requests/{request_id}", headers=_auth(stack, user))
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        late = await decide(client, stack, request_id, user, {"decision": "confirm"})
        assert late.status_code == 409
        await asyncio.sleep(2)
    calls, cost, on_request = await ledger(stack, request_id)
    assert (calls, cost) == at_checkpoint[:2] and calls == 1  # the skeleton's call, and nothing after
    assert on_request == pytest.approx(cost) and cost > 0


def _auth(stack: Stack, user: uuid.UUID) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.token(user)}"}
