"""One week of a plan written again through the real services and the simulator: as the user asks,
only that week changed, the plan still valid, every version readable, the cost on the ledger, and
nothing of it for another user."""

import uuid

import asyncpg
import httpx
import pytest

from contracts.plan import TrainingWeek, WorkoutPlan
from services.planner.quality import loads_joint, plan_problems
from tests.e2e.conftest import Stack
from tests.e2e.test_pipeline import SEED_PROFILE, submit, wait_for_end

pytestmark = pytest.mark.e2e

INSTRUCTION = "fewer squats, my knee hurts"


def plan_of(view: dict[str, object]) -> WorkoutPlan:
    """A ``GET /v1/plans/{id}`` reply as the plan it holds."""
    weeks = [
        TrainingWeek(
            week=week["week"],
            theme=week["theme"],
            days=[
                {
                    "day": day["day"],
                    "focus": day["focus"],
                    "exercises": [{**e, "name": e["exercise"]["name"]} for e in day["entries"]],
                }
                for day in week["days"]
            ],
        )
        for week in view["weeks"]  # type: ignore[attr-defined]
    ]
    return WorkoutPlan(title=str(view["title"]), summary=str(view["summary"]), weeks=weeks)


async def test_a_week_written_again_as_the_user_asks_changes_only_that_week(stack: Stack) -> None:
    user, stranger = uuid.uuid4(), uuid.uuid4()
    headers = {"Authorization": f"Bearer {stack.token(user)}"}
    async with httpx.AsyncClient(timeout=30) as client:
        done = await wait_for_end(client, stack, await submit(client, stack, SEED_PROFILE, user), user)
        assert done["status"] == "completed", stack.log_tail()
        plan_id = done["plan_id"]
        before = plan_of((await client.get(f"{stack.gateway_url}/v1/plans/{plan_id}", headers=headers)).json())
        assert any(loads_joint(i.name, "knee") for d in before.weeks[1].days for i in d.exercises)

        regenerate = f"{stack.gateway_url}/v1/plans/{plan_id}/weeks/2/regenerate"
        stranger_headers = {"Authorization": f"Bearer {stack.token(stranger)}"}
        refused = await client.post(regenerate, headers=stranger_headers, json={"instruction": INSTRUCTION})
        assert refused.status_code == 404, refused.text
        missing = await client.get(f"{stack.gateway_url}/v1/plans/{plan_id}/weeks/2", headers=stranger_headers)
        assert missing.status_code == 404
        beyond = await client.post(f"{stack.gateway_url}/v1/plans/{plan_id}/weeks/9/regenerate", headers=headers)
        assert beyond.status_code == 422

        response = await client.post(regenerate, headers=headers, json={"instruction": INSTRUCTION})
        assert response.status_code == 202, response.text
        accepted = response.json()
        assert (accepted["status"], accepted["plan_id"], accepted["week"]) == ("processing", plan_id, 2)
        ended = await wait_for_end(client, stack, accepted["request_id"], user)
        assert (ended["status"], ended["plan_id"]) == ("completed", plan_id), (ended, stack.log_tail())

        after = plan_of((await client.get(f"{stack.gateway_url}/v1/plans/{plan_id}", headers=headers)).json())
        history = (await client.get(f"{stack.gateway_url}/v1/plans/{plan_id}/weeks/2", headers=headers)).json()

    # Only week 2 changed: as asked, on the same days; the plan passes every check it passed before.
    assert [w for w in after.weeks if w.week != 2] == [w for w in before.weeks if w.week != 2]
    new_week = after.weeks[1]
    assert new_week != before.weeks[1]
    assert not any(loads_joint(i.name, "knee") for d in new_week.days for i in d.exercises)
    assert [d.day for d in new_week.days] == [d.day for d in before.weeks[1].days]
    assert plan_problems(after, profile=SEED_PROFILE) == plan_problems(before, profile=SEED_PROFILE) == []

    assert history["current_version"] == 2
    first, second = history["versions"]
    assert (first["version"], first["current"], second["version"], second["current"]) == (1, False, 2, True)
    assert first["days"] == before.weeks[1].model_dump(mode="json")["days"]
    assert second["instruction"] == INSTRUCTION and second["request_id"] == accepted["request_id"]
    assert second["quality"]["overall"] > 0

    conn = await asyncpg.connect(stack.database_url)
    try:
        calls = await conn.fetch(
            "SELECT stage, outcome, cost_usd FROM llm_calls WHERE request_id = $1", uuid.UUID(accepted["request_id"])
        )
        cost = await conn.fetchval(
            "SELECT cost_usd FROM workout_plan_requests WHERE id = $1", uuid.UUID(accepted["request_id"])
        )
    finally:
        await conn.close()
    assert calls and all(c["stage"] in ("planner", "profiler") for c in calls)
    assert cost == sum(c["cost_usd"] for c in calls) > 0
