"""A week written again, against a real Postgres: accepted like a request (caps, quota, one per plan,
another user's plan refused), stored as a pending version until its exercises have profiles, then
swapped in alone, every version kept; a failed one leaves nothing; the sweeper re-drives a stall."""

import uuid

import asyncpg
import pytest

from contracts.events import (
    ExerciseProfiled,
    ExerciseProfileNeeded,
    LlmCallRecorded,
    LlmUsage,
    PlanFailed,
    WeekGenerated,
    WeekRequested,
)
from contracts.exercise_keys import exercise_refs_of
from contracts.plan import PrescribedExercise, TrainingDay, TrainingWeek
from services.gateway.postgres import PostgresRequests
from services.gateway.requests import (
    Acceptance,
    IdempotencyConflict,
    QuotaExceeded,
    Quotas,
    RegenerationInProgress,
    StagedEvents,
)
from services.gateway.steering import PlanSteering
from services.persister.plans import Completion, Persisting
from services.persister.postgres import PostgresPlanStore
from services.persister.sweeper import Sweeper, SweepPolicy
from services.persister.week_versions import PLAN_CHANGED
from tests.fakes import RecordingPublisher, sample_profile
from tests.integration.seeding import events_for, fresh_names, new_request

pytestmark = pytest.mark.integration


async def completed_plan(pool: asyncpg.Pool) -> tuple[uuid.UUID, uuid.UUID]:
    """A user with a complete plan (every exercise profiled): (user, plan)."""
    store = PostgresPlanStore(pool)
    request_id, user_id = await new_request(pool)
    generated, profiled = events_for(request_id, user_id, fresh_names(3))
    await store.store_plan(generated)
    for event in profiled:
        done = await store.store_profile(event)
    assert isinstance(done, Completion)
    return user_id, done.plan_id


def gateway(pool: asyncpg.Pool, publisher: RecordingPublisher, **quotas: int) -> PlanSteering:
    limits = {"max_active": 3, "max_per_day": 20, **quotas}
    repository = PostgresRequests(pool)
    return PlanSteering(repository, StagedEvents(repository, publisher, wait_seconds=1), publisher, Quotas(**limits))


def rewritten(request: WeekRequested, names: list[str]) -> WeekGenerated:
    """The week as the planner would send it back: the same days, other exercises, a call paid."""
    old = next(w for w in request.plan.weeks if w.week == request.week)
    week = TrainingWeek(
        week=old.week,
        theme=f"{old.theme} (again)",
        days=[
            TrainingDay(
                day=day.day,
                focus=day.focus,
                exercises=[PrescribedExercise(name=n, sets=3, reps="10", rest_seconds=60, notes="") for n in names],
            )
            for day in old.days
        ],
    )
    call = LlmCallRecorded(
        request_id=request.request_id, call_id=uuid.uuid4(), stage="planner", model="test", outcome="ok", cost_usd=0.01
    )
    return WeekGenerated(
        request_id=request.request_id,
        user_id=request.user_id,
        plan_id=request.plan_id,
        week=week,
        instruction=request.instruction,
        plan_revision=request.plan_revision,
        exercises=exercise_refs_of([week]),
        usage=LlmUsage(model="test", prompt_tokens=100, completion_tokens=50),
        calls=(call,),
        quality={"overall": 0.9},
    )


async def regenerate(requests: PlanSteering, publisher: RecordingPublisher, **kwargs: object) -> WeekRequested:
    accepted = await requests.regenerate_week(**kwargs)  # type: ignore[arg-type]
    assert isinstance(accepted, Acceptance)
    (event,) = [e for e in publisher.of_type(WeekRequested) if e.request_id == accepted.request_id]
    assert isinstance(event, WeekRequested)
    return event


async def entries_by_week(pool: asyncpg.Pool, plan_id: uuid.UUID) -> dict[int, list[tuple[object, ...]]]:
    rows = await pool.fetch(
        "SELECT week, day_of_week, position, exercise_name, sets, reps, week_theme, equipment FROM workout_entries"
        " WHERE plan_id = $1 ORDER BY week, day_of_week, position",
        plan_id,
    )
    weeks: dict[int, list[tuple[object, ...]]] = {}
    for row in rows:
        weeks.setdefault(row["week"], []).append(tuple(row))
    return weeks


async def test_a_week_waits_for_its_profiles_then_replaces_only_that_week_and_every_version_stays(
    pool: asyncpg.Pool,
) -> None:
    publisher = RecordingPublisher()
    requests = gateway(pool, publisher)
    persisting = Persisting(PostgresPlanStore(pool), publisher, publisher)
    user_id, plan_id = await completed_plan(pool)
    before = await entries_by_week(pool, plan_id)

    request = await regenerate(
        requests, publisher, user_id=user_id, plan_id=plan_id, week=2, instruction="fewer squats, my knee hurts"
    )
    assert request.plan.weeks[1].days[0].exercises[0].name == before[2][0][3]  # the plan as stored travels along
    new_names = fresh_names(2)
    await persisting.week_generated(rewritten(request, new_names))

    # New exercises: the week waits, and their profiles are asked for; the plan is untouched.
    asked = [e for e in publisher.of_type(ExerciseProfileNeeded) if e.request_id == request.request_id]
    assert sorted(e.exercise.name for e in asked) == sorted(new_names)  # type: ignore[attr-defined]
    assert await entries_by_week(pool, plan_id) == before
    status = await pool.fetchval("SELECT status FROM workout_plan_requests WHERE id = $1", request.request_id)
    assert status == "processing"

    for event in asked:
        assert isinstance(event, ExerciseProfileNeeded)
        await persisting.exercise_profiled(
            ExerciseProfiled(
                request_id=request.request_id,
                exercise=event.exercise,
                profile=sample_profile(event.exercise.name),
                source="llm",
            )
        )

    row = await pool.fetchrow(
        "SELECT status, plan_id, cost_usd, llm_calls FROM workout_plan_requests WHERE id = $1", request.request_id
    )
    assert (row["status"], row["plan_id"]) == ("completed", plan_id)
    assert float(row["cost_usd"]) == pytest.approx(0.01) and row["llm_calls"] == 1  # on the ledger and the request
    after = await entries_by_week(pool, plan_id)
    assert {n: after[n] for n in after if n != 2} == {n: before[n] for n in before if n != 2}
    assert {e[3] for e in after[2]} == set(new_names)
    assert all(e[7] == "barbell" for e in after[2])  # equipment from the new profiles

    history = await requests.week_history(user_id, plan_id, 2)
    assert history is not None and history.current_version == 2
    first, second = history.versions
    assert (first.version, first.current, second.version, second.current) == (1, False, 2, True)
    assert [i.name for d in first.days for i in d.exercises] == [e[3] for e in before[2]]
    assert second.instruction == "fewer squats, my knee hurts" and second.request_id == request.request_id

    # Again, over exercises the catalogue has: swapped in at once, version 3; a redelivery changes nothing.
    again = await regenerate(requests, publisher, user_id=user_id, plan_id=plan_id, week=2, instruction=None)
    generated = rewritten(again, new_names[:1])
    await persisting.week_generated(generated)
    await persisting.week_generated(generated)
    history = await requests.week_history(user_id, plan_id, 2)
    assert history is not None
    assert [(v.version, v.current) for v in history.versions] == [(1, False), (2, False), (3, True)]
    assert {e[3] for e in (await entries_by_week(pool, plan_id))[2]} == {new_names[0]}


async def test_a_failed_regeneration_leaves_the_plan_as_it_was_and_no_version(pool: asyncpg.Pool) -> None:
    publisher = RecordingPublisher()
    requests = gateway(pool, publisher)
    persisting = Persisting(PostgresPlanStore(pool), publisher, publisher)
    user_id, plan_id = await completed_plan(pool)
    before = await entries_by_week(pool, plan_id)
    request = await regenerate(requests, publisher, user_id=user_id, plan_id=plan_id, week=5, instruction=None)
    await persisting.week_generated(rewritten(request, fresh_names(2)))  # waits for profiles

    await persisting.plan_failed(PlanFailed(request_id=request.request_id, stage="profiler", reason="llm_error"))

    assert await entries_by_week(pool, plan_id) == before
    assert await pool.fetchval("SELECT count(*) FROM workout_week_versions WHERE plan_id = $1", plan_id) == 0
    history = await requests.week_history(user_id, plan_id, 5)
    assert history is not None and [(v.version, v.current) for v in history.versions] == [(1, True)]


async def test_the_accept_step_scopes_counts_and_serialises_regenerations(pool: asyncpg.Pool) -> None:
    publisher = RecordingPublisher()
    user_id, plan_id = await completed_plan(pool)
    requests = gateway(pool, publisher, max_per_day=3)

    # Another user's plan, an unknown plan: nothing, as if it did not exist.
    assert await requests.regenerate_week(user_id=uuid.uuid4(), plan_id=plan_id, week=1, instruction=None) is None
    assert await requests.regenerate_week(user_id=user_id, plan_id=uuid.uuid4(), week=1, instruction=None) is None

    first = await requests.regenerate_week(
        user_id=user_id, plan_id=plan_id, week=1, instruction="shorter", idempotency_key="k"
    )
    assert first is not None
    # The same key again: the same request; with another instruction: a conflict.
    retry = await requests.regenerate_week(
        user_id=user_id, plan_id=plan_id, week=1, instruction="shorter", idempotency_key="k"
    )
    assert retry == first
    with pytest.raises(IdempotencyConflict):
        await requests.regenerate_week(
            user_id=user_id, plan_id=plan_id, week=1, instruction="longer", idempotency_key="k"
        )
    # One regeneration of a plan at a time, whichever week.
    with pytest.raises(RegenerationInProgress) as busy:
        await requests.regenerate_week(user_id=user_id, plan_id=plan_id, week=3, instruction=None)
    assert busy.value.request_id == first.request_id

    # The daily quota counts regenerations with plans: the plan's request, this one, one more.
    await pool.execute("UPDATE workout_plan_requests SET status = 'failed' WHERE id = $1", first.request_id)
    assert await requests.regenerate_week(user_id=user_id, plan_id=plan_id, week=3, instruction=None) is not None
    await pool.execute(
        "UPDATE workout_plan_requests SET status = 'failed' WHERE user_id = $1 AND status = 'processing'", user_id
    )
    with pytest.raises(QuotaExceeded):
        await requests.regenerate_week(user_id=user_id, plan_id=plan_id, week=4, instruction=None)


async def test_the_sweeper_redrives_a_stalled_regeneration_with_what_it_was_accepted_with(pool: asyncpg.Pool) -> None:
    publisher = RecordingPublisher()
    user_id, plan_id = await completed_plan(pool)
    request = await regenerate(
        gateway(pool, publisher), publisher, user_id=user_id, plan_id=plan_id, week=6, instruction="no lunges"
    )
    await pool.execute(
        "UPDATE workout_plan_requests SET updated_at = clock_timestamp() - interval '2 minutes' WHERE id = $1",
        request.request_id,
    )
    swept = RecordingPublisher()
    await Sweeper(pool, swept, SweepPolicy(stall_seconds=60, deadline_seconds=600)).sweep_once()

    (redriven,) = [e for e in swept.events if e.request_id == request.request_id]
    assert isinstance(redriven, WeekRequested)
    assert redriven.redrive == 1 and redriven.dedup_id.endswith(":redrive:1")
    assert redriven.model_dump(exclude={"redrive"}) == request.model_dump(exclude={"redrive"})


async def test_a_week_checked_within_a_plan_revised_since_is_refused_and_the_plan_kept(pool: asyncpg.Pool) -> None:
    publisher = RecordingPublisher()
    persisting = Persisting(PostgresPlanStore(pool), publisher, publisher)
    user_id, plan_id = await completed_plan(pool)
    stale = await regenerate(
        gateway(pool, publisher), publisher, user_id=user_id, plan_id=plan_id, week=4, instruction=None
    )
    assert stale.plan_revision == 0
    # Another week is swapped in between this request's read and its swap (what one regeneration at
    # a time leaves possible: the other completing between the read and the accept).
    await pool.execute(
        "INSERT INTO workout_week_versions (plan_id, week, version, state, content)"
        " VALUES ($1, 7, 1, 'superseded', '{}')",
        plan_id,
    )
    before = await entries_by_week(pool, plan_id)

    await persisting.week_generated(rewritten(stale, [stale.plan.weeks[0].days[0].exercises[0].name]))

    row = await pool.fetchrow("SELECT status, error FROM workout_plan_requests WHERE id = $1", stale.request_id)
    assert (row["status"], row["error"]) == ("failed", PLAN_CHANGED)
    assert await entries_by_week(pool, plan_id) == before
    assert not await pool.fetchval("SELECT count(*) FROM workout_week_versions WHERE request_id = $1", stale.request_id)
