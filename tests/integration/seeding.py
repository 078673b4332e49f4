"""Rows and events for persister tests: requests as the gateway stores them, events as the workers send them."""

import uuid

import asyncpg

from contracts.events import ExerciseProfiled, ExerciseRef, LlmUsage, PlanGenerated, TrustedPlanGenerated
from contracts.exercise_keys import exercise_refs
from tests.fakes import sample_plan, sample_profile


async def new_request(pool: asyncpg.Pool) -> tuple[uuid.UUID, uuid.UUID]:
    request_id, user_id = uuid.uuid4(), uuid.uuid4()
    await pool.execute(
        "INSERT INTO workout_plan_requests (id, user_id, user_profile) VALUES ($1, $2, 'test')", request_id, user_id
    )
    return request_id, user_id


def events_for(
    request_id: uuid.UUID, user_id: uuid.UUID, names: list[str]
) -> tuple[TrustedPlanGenerated, list[ExerciseProfiled]]:
    """A plan over ``names`` as the persister reads it, and each of its exercises' profile."""
    plan = sample_plan(names)
    refs = exercise_refs(plan)
    generated = PlanGenerated(
        request_id=request_id,
        user_id=user_id,
        plan=plan,
        exercises=refs,
        usage=LlmUsage(model="test", prompt_tokens=10, completion_tokens=20),
    )
    profiled = [
        ExerciseProfiled(
            request_id=request_id,
            exercise=ExerciseRef(key=ref.key, name=ref.name),
            profile=sample_profile(ref.name),
            source="llm",
        )
        for ref in refs
    ]
    return TrustedPlanGenerated.of(generated), profiled


def fresh_names(count: int) -> list[str]:
    tag = uuid.uuid4().hex[:8]
    return [f"Exercise {tag} {i}" for i in range(count)]
