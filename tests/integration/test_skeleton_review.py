"""The waitpoint's record of truth, against a real Postgres: the accepted wait is stored with the
request, the persister marks it waiting once (and never after a decision), a decision goes through
the outbox with the request's lock, the sweeper leaves a wait alone and goes on once it runs out,
and the deadline grows by the wait."""

import random
import uuid

import asyncpg
import pytest

from contracts.events import PlanAwaitingReview, PlanRequested
from contracts.plan import PlanOutline
from llm_simulator.intent import read_intent
from llm_simulator.plans import skeleton_of, write_plan
from services.gateway.postgres import PostgresRequests
from services.gateway.requests import NotWaiting, PlanRequests, Quotas, StagedEvents
from services.gateway.steering import PlanSteering
from services.persister.plans import Persisting
from services.persister.postgres import PostgresPlanStore
from services.persister.sweeper import Sweeper, SweepPolicy
from tests.fakes import RecordingPublisher

pytestmark = pytest.mark.integration

PROFILE = "I want to build muscle, 3x per week, I have a full gym"
_intent = read_intent(PROFILE, "")
OUTLINE = PlanOutline.model_validate(
    skeleton_of(write_plan(_intent, random.Random(1)), _intent).model_dump(include={"days_per_week", "blocks", "weeks"})
)
POLICY = SweepPolicy(stall_seconds=60, deadline_seconds=600)


async def accepted(pool: asyncpg.Pool, publisher: RecordingPublisher, review_seconds: int) -> PlanRequested:
    requests = PlanRequests(PostgresRequests(pool), publisher, publisher, Quotas(max_active=3, max_per_day=20))
    acceptance = await requests.accept_request(
        user_id=uuid.uuid4(), user_profile=PROFILE, system_prompt=None, review_seconds=review_seconds
    )
    (event,) = [e for e in publisher.of_type(PlanRequested) if e.request_id == acceptance.request_id]
    assert isinstance(event, PlanRequested)
    return event


def steering(pool: asyncpg.Pool, publisher: RecordingPublisher) -> PlanSteering:
    repository = PostgresRequests(pool)
    staged = StagedEvents(repository, publisher, wait_seconds=1)
    return PlanSteering(repository, staged, publisher, Quotas(max_active=3, max_per_day=20))


def awaiting(request: PlanRequested, round_: int = 0) -> PlanAwaitingReview:
    return PlanAwaitingReview(
        request_id=request.request_id,
        user_id=request.user_id,
        outline=OUTLINE,
        round=round_,
        review_seconds=request.review_seconds,
    )


async def row(pool: asyncpg.Pool, request_id: uuid.UUID) -> asyncpg.Record:
    found = await pool.fetchrow(
        "SELECT status, stage, review_seconds, review_round, review_action, review_adjustments,"
        " review_until > clock_timestamp() AS waiting_on, review_outline FROM workout_plan_requests WHERE id = $1",
        request_id,
    )
    assert found is not None
    return found


async def test_a_wait_is_recorded_once_and_a_decision_goes_out_with_the_requests_lock(pool: asyncpg.Pool) -> None:
    publisher = RecordingPublisher()
    store = PostgresPlanStore(pool)
    persisting = Persisting(store, publisher, publisher)
    requests = steering(pool, publisher)
    request = await accepted(pool, publisher, review_seconds=300)
    assert (await row(pool, request.request_id))["review_seconds"] == 300  # from the accepted event itself

    with pytest.raises(NotWaiting):  # nothing shown yet
        await requests.review_skeleton(request.user_id, request.request_id, decision="confirm", instruction=None)
    await persisting.plan_awaiting_review(awaiting(request))
    assert not await store.await_review(awaiting(request))  # a repeat changes nothing
    waiting = await row(pool, request.request_id)
    assert (waiting["stage"], waiting["waiting_on"]) == ("waiting", True)
    assert PlanOutline.model_validate(waiting["review_outline"]) == OUTLINE
    review = await requests.get_review(request.user_id, request.request_id)
    assert review is not None and review.outline == OUTLINE
    assert await requests.get_review(uuid.uuid4(), request.request_id) is None  # another user's: nothing

    assert (
        await requests.review_skeleton(uuid.uuid4(), request.request_id, decision="confirm", instruction=None) is None
    )
    snapshot = await requests.review_skeleton(
        request.user_id, request.request_id, decision="adjust", instruction="fewer squats"
    )
    assert snapshot is not None and snapshot.stage == "queued"
    decided = await row(pool, request.request_id)
    assert (decided["review_round"], decided["review_action"], decided["review_adjustments"]) == (
        1,
        "adjust",
        ["fewer squats"],
    )
    again = [e for e in publisher.of_type(PlanRequested) if e.request_id == request.request_id][-1]
    assert isinstance(again, PlanRequested) and again.review is not None
    assert (again.review.action, again.review.round, again.review.adjustments) == ("adjust", 1, ("fewer squats",))
    # The first round's wait, redelivered after the decision, changes nothing; the second round's waits.
    assert not await store.await_review(awaiting(request, 0))
    assert await store.await_review(awaiting(request, 1))
    await requests.review_skeleton(request.user_id, request.request_id, decision="confirm", instruction=None)
    assert not await store.await_review(awaiting(request, 1))
    assert (await row(pool, request.request_id))["review_action"] == "confirm"


async def test_the_sweeper_leaves_a_wait_alone_then_goes_on_with_it_once_it_runs_out(pool: asyncpg.Pool) -> None:
    publisher, swept = RecordingPublisher(), RecordingPublisher()
    request = await accepted(pool, publisher, review_seconds=300)
    await PostgresPlanStore(pool).await_review(awaiting(request))
    # Quiet for longer than a stall, older than the deadline alone: still the user's time.
    await pool.execute(
        "UPDATE workout_plan_requests SET updated_at = clock_timestamp() - interval '10 minutes',"
        " created_at = clock_timestamp() - interval '11 minutes' WHERE id = $1",
        request.request_id,
    )
    sweeper = Sweeper(pool, swept, POLICY)
    await sweeper.sweep_once()
    assert not [e for e in swept.events if e.request_id == request.request_id]
    assert (await row(pool, request.request_id))["stage"] == "waiting"

    await pool.execute(
        "UPDATE workout_plan_requests SET review_until = clock_timestamp() - interval '1 second' WHERE id = $1",
        request.request_id,
    )
    await sweeper.sweep_once()
    (went_on,) = [e for e in swept.events if e.request_id == request.request_id]
    assert isinstance(went_on, PlanRequested) and went_on.review is not None
    assert (went_on.review.action, went_on.review.round, went_on.review_seconds) == ("timeout", 0, 300)
    after = await row(pool, request.request_id)
    assert (after["status"], after["stage"], after["review_action"]) == ("processing", "queued", "timeout")


async def test_a_stalled_request_is_redriven_with_its_decision_and_the_deadline_counts_the_wait(
    pool: asyncpg.Pool,
) -> None:
    publisher, swept = RecordingPublisher(), RecordingPublisher()
    requests = steering(pool, publisher)
    request = await accepted(pool, publisher, review_seconds=300)
    await PostgresPlanStore(pool).await_review(awaiting(request))
    await requests.review_skeleton(request.user_id, request.request_id, decision="adjust", instruction="no lunges")
    # Stalled after the decision; created 11 minutes ago: past the 10-minute deadline, not past
    # the deadline plus two shown skeletons' waits (the first, and the adjusted one to come).
    await pool.execute(
        "UPDATE workout_plan_requests SET updated_at = clock_timestamp() - interval '2 minutes',"
        " created_at = clock_timestamp() - interval '11 minutes' WHERE id = $1",
        request.request_id,
    )

    result = await Sweeper(pool, swept, POLICY).sweep_once()

    (redriven,) = [e for e in swept.events if e.request_id == request.request_id]
    assert isinstance(redriven, PlanRequested) and redriven.redrive == 1
    assert redriven.review is not None
    assert (redriven.review.action, redriven.review.round, redriven.review.adjustments) == ("adjust", 1, ("no lunges",))
    assert (await row(pool, request.request_id))["status"] == "processing" and result.timed_out == 0

    await pool.execute(
        "UPDATE workout_plan_requests SET created_at = clock_timestamp() - interval '21 minutes' WHERE id = $1",
        request.request_id,
    )
    await Sweeper(pool, swept, POLICY).sweep_once()
    assert (await row(pool, request.request_id))["status"] == "failed"
