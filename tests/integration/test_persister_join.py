"""The persister's join under concurrent and repeated delivery, against a real Postgres."""

import asyncio
import random
import uuid

import asyncpg
import orjson
import pytest

from contracts.events import ExerciseProfiled, PlanCancelled, PlanFailed, TrustedPlanGenerated
from service_runtime.outcomes import GiveUp
from services.gateway.postgres import PostgresRequests
from services.gateway.requests import PlanRequests, Quotas
from services.persister.completion import complete_if_ready
from services.persister.plan_rows import insert_plan
from services.persister.plans import Completion, Persisting, Waiting
from services.persister.postgres import PostgresPlanStore, lock_request
from tests.fakes import RecordingPublisher
from tests.integration.seeding import events_for, fresh_names, new_request

pytestmark = pytest.mark.integration


async def deliver(
    store: PostgresPlanStore, event: TrustedPlanGenerated | ExerciseProfiled
) -> Completion | Waiting | None:
    # Deadlocks are possible in principle and are transient: the consumer would redeliver.
    for _ in range(5):
        try:
            if isinstance(event, TrustedPlanGenerated):
                return await store.store_plan(event)
            return await store.store_profile(event)
        except asyncpg.DeadlockDetectedError:
            await asyncio.sleep(0.01)
    raise AssertionError("deadlocked five times in a row")


async def assert_completed_once(pool: asyncpg.Pool, request_id: uuid.UUID, entries: int) -> None:
    row = await pool.fetchrow("SELECT status, plan_id FROM workout_plan_requests WHERE id = $1", request_id)
    assert row["status"] == "completed"
    plans = await pool.fetch("SELECT id, assembly AS status FROM workout_plans WHERE request_id = $1", request_id)
    assert [(p["id"], p["status"]) for p in plans] == [(row["plan_id"], "complete")]
    assert await pool.fetchval("SELECT count(*) FROM workout_entries WHERE plan_id = $1", row["plan_id"]) == entries


async def test_a_plan_and_its_profiles_arriving_at_once_complete_the_request(pool: asyncpg.Pool) -> None:
    # Without the per-request lock about 2% of these trials leave a plan waiting forever.
    store = PostgresPlanStore(pool)
    for _ in range(250):
        request_id, user_id = await new_request(pool)
        generated, profiled = events_for(request_id, user_id, fresh_names(2))
        deliveries = [generated, *profiled]
        random.shuffle(deliveries)
        results = await asyncio.gather(*(deliver(store, e) for e in deliveries))
        assert any(isinstance(r, Completion) for r in results), "nobody completed the plan: it would wait forever"
        await assert_completed_once(pool, request_id, entries=8 * 3 * 2)


async def test_two_plans_sharing_new_exercises_both_complete(pool: asyncpg.Pool) -> None:
    store = PostgresPlanStore(pool)
    shared = fresh_names(5)
    requests = [await new_request(pool) for _ in range(2)]
    batches = [events_for(rid, uid, [*shared[i : i + 3], *fresh_names(1)]) for i, (rid, uid) in enumerate(requests)]
    deliveries = [e for generated, profiled in batches for e in (generated, *profiled)]
    random.shuffle(deliveries)
    await asyncio.gather(*(deliver(store, e) for e in deliveries))
    for request_id, _ in requests:
        await assert_completed_once(pool, request_id, entries=8 * 3 * 4)


async def test_redelivered_events_store_the_plan_once(pool: asyncpg.Pool) -> None:
    store = PostgresPlanStore(pool)
    request_id, user_id = await new_request(pool)
    generated, profiled = events_for(request_id, user_id, fresh_names(3))
    for event in [generated, *profiled, generated, *profiled, generated]:
        await deliver(store, event)
    await assert_completed_once(pool, request_id, entries=8 * 3 * 3)
    completion = await store.store_plan(generated)
    assert isinstance(completion, Completion)  # a repeat still reports it, so a lost plan.persisted is re-sent


async def test_status_turns_completed_last_and_atomically(pool: asyncpg.Pool) -> None:
    store = PostgresPlanStore(pool)
    request_id, user_id = await new_request(pool)
    generated, profiled = events_for(request_id, user_id, fresh_names(6))
    done = asyncio.Event()
    observations = 0

    async def watch() -> None:
        nonlocal observations
        async with pool.acquire() as conn:
            while not done.is_set():
                row = await conn.fetchrow(
                    "SELECT r.status, p.assembly AS plan_status,"
                    " (SELECT count(*) FROM workout_entries e JOIN exercises x ON x.key = e.exercise_key"
                    "   WHERE e.plan_id = p.id AND x.profile IS NULL) AS unprofiled"
                    " FROM workout_plan_requests r LEFT JOIN workout_plans p ON p.request_id = r.id WHERE r.id = $1",
                    request_id,
                )
                observations += 1
                if row["status"] == "completed":
                    assert row["plan_status"] == "complete"
                    assert row["unprofiled"] == 0

    watcher = asyncio.create_task(watch())
    for event in [*profiled[:3], generated, *profiled[3:]]:
        await deliver(store, event)
        await asyncio.sleep(0.01)
    done.set()
    await watcher
    assert observations > 5
    times = await pool.fetchrow(
        "SELECT r.completed_at, p.created_at AS plan_at,"
        " (SELECT max(created_at) FROM workout_entries WHERE plan_id = p.id) AS entries_at,"
        " (SELECT max(x.profiled_at) FROM workout_entries e JOIN exercises x ON x.key = e.exercise_key"
        "   WHERE e.plan_id = p.id) AS profiles_at"
        " FROM workout_plan_requests r JOIN workout_plans p ON p.request_id = r.id WHERE r.id = $1",
        request_id,
    )
    assert times["completed_at"] >= max(times["plan_at"], times["entries_at"], times["profiles_at"])


async def test_a_failure_never_overrides_a_completed_request(pool: asyncpg.Pool) -> None:
    store = PostgresPlanStore(pool)
    request_id, user_id = await new_request(pool)
    generated, profiled = events_for(request_id, user_id, fresh_names(2))
    for event in [generated, *profiled]:
        await deliver(store, event)
    await store.mark_failed(PlanFailed(request_id=request_id, stage="planner", reason="late"))
    assert await pool.fetchval("SELECT status FROM workout_plan_requests WHERE id = $1", request_id) == "completed"


async def test_a_failed_request_keeps_its_reason_and_drops_a_late_plan(pool: asyncpg.Pool) -> None:
    store = PostgresPlanStore(pool)
    request_id, user_id = await new_request(pool)
    await store.mark_failed(
        PlanFailed(request_id=request_id, stage="planner", reason="invalid_llm_reply", detail="2 attempts")
    )
    generated, _ = events_for(request_id, user_id, fresh_names(2))
    assert await store.store_plan(generated) is None
    row = await pool.fetchrow("SELECT status, error FROM workout_plan_requests WHERE id = $1", request_id)
    assert (row["status"], row["error"]) == ("failed", "invalid_llm_reply: 2 attempts")
    assert await pool.fetchval("SELECT count(*) FROM workout_plans WHERE request_id = $1", request_id) == 0


async def test_an_event_for_an_unknown_request_is_given_up(pool: asyncpg.Pool) -> None:
    generated, _ = events_for(uuid.uuid4(), uuid.uuid4(), fresh_names(1))
    with pytest.raises(GiveUp, match="unknown_request"):
        await PostgresPlanStore(pool).store_plan(generated)


async def test_a_request_failing_mid_assembly_keeps_no_partial_plan(pool: asyncpg.Pool) -> None:
    store = PostgresPlanStore(pool)
    request_id, user_id = await new_request(pool)
    generated, profiled = events_for(request_id, user_id, fresh_names(3))
    await store.store_plan(generated)
    await store.store_profile(profiled[0])
    await store.mark_failed(PlanFailed(request_id=request_id, stage="profiler", reason="invalid_llm_reply"))
    await store.store_profile(profiled[1])  # a late profile changes nothing
    assert await pool.fetchval("SELECT count(*) FROM workout_plans WHERE request_id = $1", request_id) == 0
    assert await pool.fetchval("SELECT status FROM workout_plan_requests WHERE id = $1", request_id) == "failed"


async def test_each_new_profile_reports_progress_once_and_repeats_report_nothing(pool: asyncpg.Pool) -> None:
    store = PostgresPlanStore(pool)
    request_id, user_id = await new_request(pool)
    generated, profiled = events_for(request_id, user_id, fresh_names(3))

    assert await store.store_plan(generated) == Waiting(request_id, 3, 0)
    assert await store.store_profile(profiled[0]) == Waiting(request_id, 3, 1)
    assert await store.store_profile(profiled[0]) is None  # a redelivery: nothing new to say
    assert await store.store_profile(profiled[1]) == Waiting(request_id, 3, 2)
    assert isinstance(await store.store_profile(profiled[2]), Completion)


async def test_a_cancelled_requests_plan_is_removed_by_the_persister_and_a_late_plan_stores_nothing(
    pool: asyncpg.Pool,
) -> None:
    store = PostgresPlanStore(pool)
    bus = RecordingPublisher()
    gateway = PlanRequests(PostgresRequests(pool), bus, bus, Quotas(max_active=3, max_per_day=20))
    request_id, user_id = await new_request(pool)
    generated, profiled = events_for(request_id, user_id, fresh_names(3))
    await store.store_plan(generated)
    await store.store_profile(profiled[0])
    plan_id = await pool.fetchval("SELECT id FROM workout_plans WHERE request_id = $1", request_id)

    await gateway.cancel_request(user_id, request_id)
    left_by_the_gateway = await pool.fetchval("SELECT count(*) FROM workout_entries WHERE plan_id = $1", plan_id)
    (cancelled,) = [event for event in bus.events if isinstance(event, PlanCancelled)]
    persisting = Persisting(store, bus, progress=bus)
    await persisting.plan_cancelled(cancelled)
    await persisting.plan_cancelled(cancelled)  # a redelivery changes nothing
    late = [await store.store_plan(generated), *[await store.store_profile(event) for event in profiled[1:]]]

    assert left_by_the_gateway == 8 * 3 * 3, "the gateway writes no plan data"
    assert await pool.fetchval("SELECT count(*) FROM workout_plans WHERE request_id = $1", request_id) == 0
    assert await pool.fetchval("SELECT count(*) FROM workout_entries WHERE plan_id = $1", plan_id) == 0
    assert late == [None, None, None]
    row = await pool.fetchrow("SELECT status, plan_id FROM workout_plan_requests WHERE id = $1", request_id)
    assert (row["status"], row["plan_id"]) == ("cancelled", None)


async def test_a_profile_the_catalogue_got_meanwhile_still_completes_a_plan_whose_store_is_committing(
    pool: asyncpg.Pool,
) -> None:
    # X is in the catalogue, still without a profile (another plan asked for it). This plan's
    # transaction counts X missing; then the other request's profile of X commits; then this
    # request's profile of X arrives while the plan's transaction has not committed yet. A look
    # without the request's lock sees "X profiled, no plan stored" and must not drop it.
    store = PostgresPlanStore(pool)
    request_id, user_id = await new_request(pool)
    other_id, other_user = await new_request(pool)
    names = fresh_names(1)
    generated, (profiled,) = events_for(request_id, user_id, names)
    others_plan, (others_profile,) = events_for(other_id, other_user, names)
    assert isinstance(await deliver(store, others_plan), Waiting)

    arriving: asyncio.Task[Completion | Waiting | None] | None = None
    async with pool.acquire() as conn:
        storing = conn.transaction()
        await storing.start()
        try:
            await lock_request(conn, request_id)
            plan_id = await insert_plan(conn, generated)
            counted = await complete_if_ready(conn, request_id, user_id, plan_id)
            assert isinstance(counted, Waiting)
            assert isinstance(await deliver(store, others_profile), Completion)  # X has its profile now
            arriving = asyncio.create_task(deliver(store, profiled))
            await asyncio.sleep(0.3)
            assert not arriving.done(), "the profile was judged without the request's lock"
        except BaseException:
            await storing.rollback()
            if arriving is not None:
                arriving.cancel()
            raise
        await storing.commit()

    assert isinstance(await arriving, Completion)
    await assert_completed_once(pool, request_id, entries=8 * 3 * 1)


class _CountingPool:
    """The pool, counting the connections taken from it (one per transaction here)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.acquired = 0

    def acquire(self) -> object:
        self.acquired += 1
        return self._pool.acquire()

    def __getattr__(self, name: str) -> object:
        return getattr(self._pool, name)


async def test_plans_arriving_together_share_one_transaction_and_each_gets_its_own_outcome(
    pool: asyncpg.Pool,
) -> None:
    counting = _CountingPool(pool)
    store = PostgresPlanStore(counting)  # type: ignore[arg-type]
    requests = [await new_request(pool) for _ in range(4)]
    events = [events_for(request_id, user_id, fresh_names(2)) for request_id, user_id in requests]
    plans = [generated for generated, _ in events]
    unknown, _ = events_for(uuid.uuid4(), uuid.uuid4(), fresh_names(1))
    inconsistent_request = await new_request(pool)
    inconsistent, _ = events_for(*inconsistent_request, fresh_names(2))
    inconsistent = inconsistent.model_copy(update={"exercises": inconsistent.exercises[:1]})

    outcomes = await asyncio.gather(
        *(store.store_plan(event) for event in [*plans, unknown, inconsistent, plans[0]]), return_exceptions=True
    )

    assert counting.acquired == 1, "the seven plans arrived together: one transaction"
    for plan, outcome in zip([*plans, plans[0]], [*outcomes[:4], outcomes[6]], strict=True):
        assert isinstance(outcome, Waiting)
        assert outcome.request_id == plan.request_id
        assert [ref.key for ref in outcome.missing] == sorted(ref.key for ref in plan.exercises)
    assert isinstance(outcomes[4], GiveUp) and outcomes[4].reason == "unknown_request"
    assert isinstance(outcomes[5], GiveUp) and outcomes[5].reason == "inconsistent_plan"
    # Each good plan is stored once (the repeat of the first too); the refused one stored nothing.
    for request_id, _ in requests:
        assert await pool.fetchval("SELECT count(*) FROM workout_plans WHERE request_id = $1", request_id) == 1
    assert await pool.fetchval("SELECT count(*) FROM workout_plans WHERE request_id = $1", inconsistent_request[0]) == 0
    usage = await pool.fetch(
        "SELECT llm_calls, stage FROM workout_plan_requests WHERE id = ANY($1::uuid[])", [rid for rid, _ in requests]
    )
    assert [(row["llm_calls"], row["stage"]) for row in usage] == [(1, "profiling")] * 4

    # Their profiles, all at once, then complete each of the four once.
    await asyncio.gather(*(deliver(store, profile) for _, profiled in events for profile in profiled))
    for (request_id, _), plan in zip(requests, plans, strict=True):
        entries = sum(len(day["exercises"]) for week in plan.plan["weeks"] for day in week["days"])
        await assert_completed_once(pool, request_id, entries=entries)


async def test_a_trusted_plan_that_does_not_fit_its_rows_fails_alone_and_its_group_is_stored(
    pool: asyncpg.Pool,
) -> None:
    # The persister takes plan.generated's plan as the planner wrote it (TrustedPlanGenerated): one
    # whose shape is wrong is refused before it joins a group; one whose values do not fit their
    # columns fails the group's write, whose plans are then written one by one.
    store = PostgresPlanStore(pool)
    requests = [await new_request(pool) for _ in range(4)]
    plans = [events_for(request_id, user_id, fresh_names(2))[0] for request_id, user_id in requests]
    misfit = orjson.loads(plans[1].wire)
    misfit["plan"]["weeks"][3]["days"][0]["exercises"][0]["sets"] = "a few"
    shapeless = orjson.loads(plans[2].wire)
    del shapeless["plan"]["weeks"][5]["days"]
    events = [
        plans[0],
        TrustedPlanGenerated.read(orjson.dumps(misfit)),
        TrustedPlanGenerated.read(orjson.dumps(shapeless)),
        plans[3],
    ]

    outcomes = await asyncio.gather(*(store.store_plan(event) for event in events), return_exceptions=True)

    assert isinstance(outcomes[0], Waiting) and isinstance(outcomes[3], Waiting)
    assert isinstance(outcomes[1], TypeError), outcomes[1]  # from the COPY's encoding of "a few"
    assert isinstance(outcomes[2], GiveUp) and outcomes[2].reason == "malformed_event", outcomes[2]
    stored = [
        await pool.fetchval("SELECT count(*) FROM workout_plans WHERE request_id = $1", request_id)
        for request_id, _ in requests
    ]
    assert stored == [1, 0, 0, 1]


async def test_a_group_of_plans_over_a_warm_catalogue_completes_in_its_own_transaction(pool: asyncpg.Pool) -> None:
    store = PostgresPlanStore(pool)
    names = fresh_names(3)
    first_request = await new_request(pool)
    first, profiled = events_for(*first_request, names)
    await deliver(store, first)
    for profile in profiled:
        await deliver(store, profile)
    requests = [await new_request(pool) for _ in range(5)]
    plans = [events_for(rid, uid, names)[0] for rid, uid in requests]
    outcomes = await asyncio.gather(*(store.store_plan(plan) for plan in plans))
    assert all(isinstance(outcome, Completion) and outcome.total_seconds is not None for outcome in outcomes)
    for request_id, _ in requests:
        await assert_completed_once(pool, request_id, entries=8 * 3 * 3)
    # Each request's usage went in with its completion, once.
    usage = await pool.fetch(
        "SELECT id, prompt_tokens, completion_tokens, llm_calls FROM workout_plan_requests WHERE id = ANY($1::uuid[])",
        [rid for rid, _ in requests],
    )
    assert {row["id"]: (row["prompt_tokens"], row["completion_tokens"], row["llm_calls"]) for row in usage} == {
        plan.request_id: (plan.usage.prompt_tokens, plan.usage.completion_tokens, plan.usage.calls) for plan in plans
    }
