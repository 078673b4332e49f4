"""The gateway's use case against the in-memory repository: idempotency, caps, budgets, cancel, reads."""

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.events import Event, PlanCancelled, PlanRequested
from contracts.progress import RequestStatus
from services.gateway.memory import InMemoryRequests
from services.gateway.requests import (
    Acceptance,
    IdempotencyConflict,
    NotCancellable,
    PlanRequests,
    QuotaExceeded,
    Quotas,
    Unavailable,
)
from services.gateway.views import PlanView
from tests.fakes import RecordingPublisher


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, 8, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class UnreachableBroker(RecordingPublisher):
    """A broker whose publishes never complete."""

    async def publish(self, event: Event) -> None:
        await asyncio.Event().wait()


DEFAULT_QUOTAS = Quotas(max_active=3, max_per_day=20)


def use_case(
    repository: InMemoryRequests, bus: RecordingPublisher | None = None, **quotas: Any
) -> tuple[PlanRequests, RecordingPublisher]:
    bus = bus or RecordingPublisher()
    limits = dataclasses.replace(DEFAULT_QUOTAS, **quotas)
    return PlanRequests(repository, bus, bus, limits, publish_wait_seconds=0.05), bus


async def accept(requests: PlanRequests, user_id: uuid.UUID, key: str | None = None, body: str = "3x") -> Acceptance:
    return await requests.accept_request(user_id=user_id, user_profile=body, system_prompt=None, idempotency_key=key)


async def test_an_accepted_request_is_stored_processing_announced_and_its_outbox_row_confirmed() -> None:
    repository = InMemoryRequests()
    requests, bus = use_case(repository)
    user_id = uuid.uuid4()

    accepted = await accept(requests, user_id)

    assert accepted.status == "processing"
    snapshot = await requests.get_request(user_id, accepted.request_id)
    assert snapshot is not None
    assert (snapshot.status, snapshot.stage) == ("processing", "queued")
    assert [e.request_id for e in bus.of_type(PlanRequested)] == [accepted.request_id]
    assert repository.outbox == {}


async def test_with_the_broker_away_a_request_is_still_accepted_and_its_event_left_to_the_relay() -> None:
    repository = InMemoryRequests()
    requests, _ = use_case(repository, UnreachableBroker())

    accepted = await accept(requests, uuid.uuid4())

    assert [e.request_id for e in repository.outbox.values()] == [accepted.request_id]


async def test_with_the_database_away_nothing_is_stored_or_announced() -> None:
    repository = InMemoryRequests()
    requests, bus = use_case(repository)
    repository.available = False

    with pytest.raises(Unavailable):
        await accept(requests, uuid.uuid4())

    assert (repository.requests, bus.events) == ({}, [])


async def test_an_idempotent_retry_answers_with_the_first_request_and_stores_nothing() -> None:
    repository = InMemoryRequests()
    requests, bus = use_case(repository, max_active=1)
    user_id = uuid.uuid4()

    first = await accept(requests, user_id, key="k1")
    retry = await accept(requests, user_id, key="k1")  # over the active cap, yet never refused

    assert retry == first
    assert len(repository.requests) == len(bus.events) == 1


async def test_an_idempotent_retry_of_an_ended_request_reports_how_it_ended() -> None:
    repository = InMemoryRequests()
    requests, _ = use_case(repository)
    user_id = uuid.uuid4()
    first = await accept(requests, user_id, key="k1")
    repository.end(first.request_id, "completed")

    assert await accept(requests, user_id, key="k1") == Acceptance(first.request_id, "completed")


async def test_a_key_reused_with_another_body_is_a_conflict_and_stores_nothing() -> None:
    repository = InMemoryRequests()
    requests, _ = use_case(repository)
    user_id = uuid.uuid4()
    await accept(requests, user_id, key="k1", body="3x")

    with pytest.raises(IdempotencyConflict):
        await accept(requests, user_id, key="k1", body="5x")

    assert len(repository.requests) == 1


async def test_the_same_key_from_two_users_is_two_requests() -> None:
    requests, _ = use_case(InMemoryRequests())

    first, second = await accept(requests, uuid.uuid4(), key="k1"), await accept(requests, uuid.uuid4(), key="k1")

    assert first.request_id != second.request_id


async def test_a_user_at_the_active_cap_is_refused_until_a_plan_ends() -> None:
    repository = InMemoryRequests()
    requests, bus = use_case(repository, max_active=2, active_retry_after_seconds=42)
    user_id = uuid.uuid4()
    first, _ = await accept(requests, user_id), await accept(requests, user_id)

    with pytest.raises(QuotaExceeded) as refused:
        await accept(requests, user_id)
    repository.end(first.request_id, "failed")
    await accept(requests, user_id)

    assert refused.value.retry_after_seconds == 42
    assert "2 plans being generated" in refused.value.message
    assert len(repository.requests) == len(bus.events) == 3
    assert await accept(requests, uuid.uuid4()), "another user's cap is their own"


async def test_a_burst_cannot_slip_past_the_active_cap() -> None:
    repository = InMemoryRequests()
    requests, _ = use_case(repository, max_active=3)
    user_id = uuid.uuid4()

    results = await asyncio.gather(*(accept(requests, user_id) for _ in range(10)), return_exceptions=True)

    assert sum(isinstance(r, Acceptance) for r in results) == 3
    assert sum(isinstance(r, QuotaExceeded) for r in results) == 7
    assert len(repository.requests) == 3


async def test_the_daily_quota_refuses_until_the_oldest_request_of_the_window_leaves_it() -> None:
    clock = Clock()
    repository = InMemoryRequests(clock)
    requests, _ = use_case(repository, max_per_day=2)
    user_id = uuid.uuid4()
    for _ in range(2):
        repository.end((await accept(requests, user_id)).request_id, "cancelled")  # ended ones count too
        clock.advance(hours=1)

    with pytest.raises(QuotaExceeded) as refused:
        await accept(requests, user_id)
    clock.advance(hours=22, seconds=1)
    await accept(requests, user_id)

    assert refused.value.retry_after_seconds == 22 * 3600
    assert "2 plans in the last 24 hours" in refused.value.message


async def test_the_user_budget_counts_each_processing_request_at_the_estimate() -> None:
    repository = InMemoryRequests()
    requests, _ = use_case(repository, max_active=10, user_daily_budget_usd=0.05, plan_cost_estimate_usd=0.02)
    user_id = uuid.uuid4()
    await accept(requests, user_id)
    await accept(requests, user_id)

    with pytest.raises(QuotaExceeded) as refused:
        await accept(requests, user_id)

    assert refused.value.retry_after_seconds == 3600
    assert "$0.04 of your $0.05 budget" in refused.value.message
    assert len(repository.requests) == 2


async def test_the_user_budget_is_filled_to_its_edge_though_binary_cannot_add_the_reserves_exactly() -> None:
    repository = InMemoryRequests()
    # Fifty times 0.02 is more than 1.0 in binary floating point; budgets compare at a millionth of a dollar.
    requests, _ = use_case(
        repository, max_active=100, max_per_day=100, user_daily_budget_usd=1.0, plan_cost_estimate_usd=0.02
    )
    user_id = uuid.uuid4()
    for _ in range(50):
        await accept(requests, user_id)

    with pytest.raises(QuotaExceeded):
        await accept(requests, user_id)

    assert len(repository.requests) == 50


async def test_a_finished_requests_real_cost_replaces_its_reservation() -> None:
    repository = InMemoryRequests()
    requests, _ = use_case(repository, user_daily_budget_usd=0.05, plan_cost_estimate_usd=0.02)
    user_id = uuid.uuid4()
    repository.end((await accept(requests, user_id)).request_id, "completed", cost_usd=0.04)

    with pytest.raises(QuotaExceeded):
        await accept(requests, user_id)


async def test_the_global_budget_counts_everyones_requests() -> None:
    repository = InMemoryRequests()
    requests, _ = use_case(repository, global_daily_budget_usd=0.03, plan_cost_estimate_usd=0.02)
    await accept(requests, uuid.uuid4())

    with pytest.raises(QuotaExceeded) as refused:
        await accept(requests, uuid.uuid4())

    assert "spending limit" in refused.value.message


async def test_cancel_ends_a_processing_request_cancelled_and_announces_it() -> None:
    repository = InMemoryRequests()
    requests, bus = use_case(repository)
    user_id = uuid.uuid4()
    request_id = (await accept(requests, user_id)).request_id

    cancelled = await requests.cancel_request(user_id, request_id)

    assert cancelled is not None
    assert (cancelled.status, cancelled.stage, cancelled.error) == ("cancelled", "cancelled", "cancelled by the user")
    assert cancelled.completed_at is not None
    assert await requests.get_request(user_id, request_id) == cancelled
    assert [(e.request_id, e.user_id) for e in bus.events if isinstance(e, PlanCancelled)] == [(request_id, user_id)]
    assert [(n.request_id, n.status) for n in bus.notices] == [(request_id, "cancelled")]
    assert repository.outbox == {}


async def test_cancelling_twice_answers_the_same_and_announces_once() -> None:
    requests, bus = use_case(InMemoryRequests())
    user_id = uuid.uuid4()
    request_id = (await accept(requests, user_id)).request_id

    first = await requests.cancel_request(user_id, request_id)
    again = await requests.cancel_request(user_id, request_id)

    assert again == first
    assert len(bus.of_type(PlanCancelled)) == len(bus.notices) == 1


@pytest.mark.parametrize("ended", ["completed", "failed"])
async def test_a_request_that_already_ended_cannot_be_cancelled(ended: RequestStatus) -> None:
    repository = InMemoryRequests()
    requests, bus = use_case(repository)
    user_id = uuid.uuid4()
    request_id = (await accept(requests, user_id)).request_id
    repository.end(request_id, ended)

    with pytest.raises(NotCancellable) as refused:
        await requests.cancel_request(user_id, request_id)

    assert refused.value.status == ended
    snapshot = await requests.get_request(user_id, request_id)
    assert snapshot is not None and snapshot.status == ended
    assert bus.of_type(PlanCancelled) == []


async def test_another_users_request_is_neither_read_nor_cancelled() -> None:
    repository = InMemoryRequests()
    requests, bus = use_case(repository)
    owner, stranger = uuid.uuid4(), uuid.uuid4()
    request_id = (await accept(requests, owner)).request_id

    assert await requests.get_request(stranger, request_id) is None
    assert await requests.cancel_request(stranger, request_id) is None
    assert await requests.cancel_request(owner, uuid.uuid4()) is None
    snapshot = await requests.get_request(owner, request_id)
    assert snapshot is not None and snapshot.status == "processing"
    assert bus.of_type(PlanCancelled) == []


async def test_requests_are_listed_newest_first_page_by_page() -> None:
    clock = Clock()
    repository = InMemoryRequests(clock)
    requests, _ = use_case(repository, max_active=10)
    user_id = uuid.uuid4()
    ids = []
    for _ in range(5):
        ids.append((await accept(requests, user_id)).request_id)
        clock.advance(seconds=1)
    await accept(requests, uuid.uuid4())

    first = await requests.list_requests(user_id, limit=3, after=None)
    second = await requests.list_requests(user_id, limit=3, after=first[-1].request_id)
    foreign = await requests.list_requests(user_id, limit=3, after=uuid.uuid4())

    assert [s.request_id for s in first + second] == ids[::-1]
    assert foreign == []


async def test_only_a_complete_plan_of_the_callers_own_is_served() -> None:
    repository = InMemoryRequests()
    requests, _ = use_case(repository)
    owner = uuid.uuid4()
    now = datetime.now(UTC)
    complete, unfinished = (
        PlanView(
            plan_id=uuid.uuid4(),
            request_id=uuid.uuid4(),
            title="t",
            summary="s",
            created_at=now,
            completed_at=now,
            weeks=[],
        )
        for _ in range(2)
    )
    repository.add_plan(owner, complete)
    repository.add_plan(owner, unfinished, complete=False)

    assert await requests.get_plan(owner, complete.plan_id) == complete
    assert await requests.get_plan(uuid.uuid4(), complete.plan_id) is None
    assert await requests.get_plan(owner, unfinished.plan_id) is None
