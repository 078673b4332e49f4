"""The sweeper against a real Postgres: stalled requests re-driven, overdue ones failed."""

import uuid

import asyncpg
import pytest

from contracts.events import Event, ExerciseProfileNeeded, PlanPersisted, PlanRequested
from services.persister.postgres import PostgresPlanStore
from services.persister.sweeper import Sweeper, SweepPolicy
from tests.fakes import RecordingPublisher
from tests.integration.seeding import events_for, fresh_names, new_request

pytestmark = pytest.mark.integration

POLICY = SweepPolicy(stall_seconds=60, deadline_seconds=600)


async def age(pool: asyncpg.Pool, request_id: uuid.UUID, *, created: float, updated: float) -> None:
    await pool.execute(
        "UPDATE workout_plan_requests SET created_at = clock_timestamp() - make_interval(secs => $2),"
        " updated_at = clock_timestamp() - make_interval(secs => $3) WHERE id = $1",
        request_id,
        created,
        updated,
    )


def for_request(publisher: RecordingPublisher, request_id: uuid.UUID) -> list[Event]:
    return [e for e in publisher.events if e.request_id == request_id]


async def test_a_stalled_queued_request_is_redriven_once_per_window(pool: asyncpg.Pool) -> None:
    publisher = RecordingPublisher()
    request_id, _ = await new_request(pool)
    await age(pool, request_id, created=120, updated=120)
    sweeper = Sweeper(pool, publisher, POLICY)

    await sweeper.sweep_once()
    await sweeper.sweep_once()

    (event,) = for_request(publisher, request_id)
    assert isinstance(event, PlanRequested)
    assert event.redrive == 1
    assert event.dedup_id == f"{request_id}:redrive:1"
    row = await pool.fetchrow("SELECT status, redrives FROM workout_plan_requests WHERE id = $1", request_id)
    assert (row["status"], row["redrives"]) == ("processing", 1)


async def test_a_stalled_plan_gets_only_its_missing_profiles_redriven(pool: asyncpg.Pool) -> None:
    store, publisher = PostgresPlanStore(pool), RecordingPublisher()
    request_id, user_id = await new_request(pool)
    generated, profiled = events_for(request_id, user_id, fresh_names(3))
    await store.store_plan(generated)
    await store.store_profile(profiled[0])
    await age(pool, request_id, created=120, updated=120)

    await Sweeper(pool, publisher, POLICY).sweep_once()

    redriven = for_request(publisher, request_id)
    assert all(isinstance(e, ExerciseProfileNeeded) for e in redriven)
    keys = sorted(e.exercise.key for e in redriven if isinstance(e, ExerciseProfileNeeded))
    assert keys == sorted(p.exercise.key for p in profiled[1:])


async def test_a_plan_whose_profiles_came_from_elsewhere_is_completed_by_the_sweeper(pool: asyncpg.Pool) -> None:
    store, publisher = PostgresPlanStore(pool), RecordingPublisher()
    names = fresh_names(2)
    first, first_user = await new_request(pool)
    second, second_user = await new_request(pool)
    generated, _ = events_for(first, first_user, names)
    await store.store_plan(generated)
    # The same exercises get profiled for another request; this request's own events are lost.
    other_generated, other_profiled = events_for(second, second_user, names)
    await store.store_plan(other_generated)
    for event in other_profiled:
        await store.store_profile(event)
    await age(pool, first, created=120, updated=120)

    result = await Sweeper(pool, publisher, POLICY).sweep_once()

    assert result.completed >= 1
    (event,) = for_request(publisher, first)
    assert isinstance(event, PlanPersisted)
    assert await pool.fetchval("SELECT status FROM workout_plan_requests WHERE id = $1", first) == "completed"


async def test_an_overdue_request_fails_with_timeout_and_a_finished_one_is_left_alone(pool: asyncpg.Pool) -> None:
    store, publisher = PostgresPlanStore(pool), RecordingPublisher()
    overdue, _ = await new_request(pool)
    finished, user_id = await new_request(pool)
    generated, profiled = events_for(finished, user_id, fresh_names(1))
    await store.store_plan(generated)
    for event in profiled:
        await store.store_profile(event)
    await age(pool, overdue, created=700, updated=10)
    await age(pool, finished, created=700, updated=700)

    await Sweeper(pool, publisher, POLICY).sweep_once()

    rows = {
        r["id"]: (r["status"], r["error"])
        for r in await pool.fetch(
            "SELECT id, status, error FROM workout_plan_requests WHERE id = ANY($1::uuid[])", [overdue, finished]
        )
    }
    assert rows[overdue] == ("failed", "timeout: no result within 600 s")
    assert rows[finished] == ("completed", None)


async def test_a_failed_redrive_publish_leaves_the_request_for_the_next_sweep(pool: asyncpg.Pool) -> None:
    class Down:
        async def publish(self, event: Event) -> None:
            raise ConnectionError("broker down")

    request_id, _ = await new_request(pool)
    await age(pool, request_id, created=120, updated=120)

    with pytest.raises(ConnectionError):
        await Sweeper(pool, Down(), POLICY).sweep_once()

    assert await pool.fetchval("SELECT redrives FROM workout_plan_requests WHERE id = $1", request_id) == 0
