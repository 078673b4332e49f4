"""What apps rely on beyond accepting a request: quotas, their request list, cancel, live status, CORS.

Real NATS JetStream and Postgres; the live-status tests serve the gateway over HTTP (uvicorn) so
the server-sent events really stream.
"""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from nats.js import JetStreamContext

from contracts.events import PlanCancelled
from contracts.progress import PlanProgress
from contracts.streams import WORKOUT_EVENTS
from contracts.subjects import PLAN_CANCELLED
from service_runtime.bus import EventBus
from service_runtime.metrics import HTTP_REQUESTS
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from services.persister.postgres import PostgresPlanStore, create_pool
from tests.integration.gateway_client import PROFILE, SECRET, bearer, error_of, serving, serving_over_http
from tests.integration.seeding import events_for, fresh_names

pytestmark = pytest.mark.integration


def settings_for(nats_url: str, database_url: str, **overrides: Any) -> GatewaySettings:
    return GatewaySettings(nats_url=nats_url, database_url=database_url, supabase_jwt_secret=SECRET, **overrides)


@pytest.fixture
async def bus(nats_url: str) -> AsyncIterator[EventBus]:
    async with EventBus(nats_url, client_name="test-notices", publish_timeout_seconds=5) as connected:
        yield connected


async def rows_of(db: asyncpg.Connection, user_id: uuid.UUID) -> int:
    count: int = await db.fetchval("SELECT count(*) FROM workout_plan_requests WHERE user_id = $1", user_id)
    return count


async def accept(client: httpx.AsyncClient, user_id: uuid.UUID, **headers: str) -> uuid.UUID:
    response = await client.post("/v1/plans", headers={**bearer(user_id), **headers}, json={"userProfile": PROFILE})
    assert response.status_code == 202, response.text
    return uuid.UUID(response.json()["request_id"])


# Quotas -------------------------------------------------------------------------------------


async def test_a_burst_gets_exactly_the_active_cap_and_the_rest_429_with_retry_after(
    nats_url: str, database_url: str, db: asyncpg.Connection
) -> None:
    settings = settings_for(nats_url, database_url, max_active_requests_per_user=3, active_cap_retry_after_seconds=42)
    user_id = uuid.uuid4()
    async with serving(create_app(settings)) as client:
        responses = await asyncio.gather(
            *(
                client.post("/v1/plans", headers=bearer(user_id), json={"userProfile": f"{PROFILE} #{i}"})
                for i in range(12)
            )
        )

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [202] * 3 + [429] * 9
    for refused in (r for r in responses if r.status_code == 429):
        assert refused.headers["Retry-After"] == "42"
        assert error_of(refused)["code"] == "quota_exceeded"
    assert await rows_of(db, user_id) == 3


async def test_the_daily_quota_counts_every_request_of_the_last_24_hours(
    nats_url: str, database_url: str, db: asyncpg.Connection
) -> None:
    settings = settings_for(nats_url, database_url, max_requests_per_day_per_user=4)
    user_id = uuid.uuid4()
    async with serving(create_app(settings)) as client:
        first = await accept(client, user_id, **{"Idempotency-Key": "first"})
        for _ in range(3):
            request_id = await accept(client, user_id)
            # Ended requests still count against the daily quota (they may have cost money).
            (await client.delete(f"/v1/requests/{request_id}", headers=bearer(user_id))).raise_for_status()
        refused = await client.post("/v1/plans", headers=bearer(user_id), json={"userProfile": PROFILE})
        retried = await client.post(
            "/v1/plans", headers={**bearer(user_id), "Idempotency-Key": "first"}, json={"userProfile": PROFILE}
        )
        someone_else = await client.post("/v1/plans", headers=bearer(), json={"userProfile": PROFILE})

    assert refused.status_code == 429
    assert error_of(refused)["code"] == "quota_exceeded"
    assert 86_000 < int(refused.headers["Retry-After"]) <= 86_400
    # A retry of an accepted request is not a new one: it gets its id back, over quota or not.
    assert (retried.status_code, retried.json()["request_id"]) == (202, str(first))
    assert someone_else.status_code == 202
    assert await rows_of(db, user_id) == 4


# The request list -----------------------------------------------------------------------------


async def test_the_list_pages_through_the_callers_own_requests_newest_first(nats_url: str, database_url: str) -> None:
    settings = settings_for(nats_url, database_url, max_active_requests_per_user=10)
    user_id = uuid.uuid4()
    async with serving(create_app(settings)) as client:
        created = [await accept(client, user_id) for _ in range(5)]
        await accept(client, uuid.uuid4())  # someone else's
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            page = await client.get("/v1/requests", headers=bearer(user_id), params=params)
            assert page.status_code == 200, page.text
            body = page.json()
            seen += [item["request_id"] for item in body["items"]]
            pages += 1
            cursor = body["next_cursor"]
            if cursor is None:
                break
        stranger = await client.get("/v1/requests", headers=bearer())
        bad_cursor = await client.get("/v1/requests", headers=bearer(user_id), params={"cursor": "not-a-cursor"})
        # Another user's request as a cursor pages through nothing: it neither leaks nor errs.
        foreign_cursor = await client.get(
            "/v1/requests", headers=bearer(user_id), params={"cursor": str(await accept(client, uuid.uuid4()))}
        )
        too_big = await client.get("/v1/requests", headers=bearer(user_id), params={"limit": "1000"})

    assert seen == [str(r) for r in reversed(created)]
    assert pages == 3
    assert stranger.json() == {"items": [], "next_cursor": None}
    assert (bad_cursor.status_code, error_of(bad_cursor)["code"]) == (422, "invalid_request")
    assert too_big.status_code == 422
    assert foreign_cursor.json() == {"items": [], "next_cursor": None}


# Cancel -----------------------------------------------------------------------------------------


async def test_cancel_ends_the_request_cancelled_and_announces_it_once(
    nats_url: str, database_url: str, db: asyncpg.Connection, js: JetStreamContext
) -> None:
    user_id = uuid.uuid4()
    async with serving(create_app(settings_for(nats_url, database_url))) as client:
        request_id = await accept(client, user_id)
        stranger = await client.delete(f"/v1/requests/{request_id}", headers=bearer())
        first = await client.delete(f"/v1/requests/{request_id}", headers=bearer(user_id))
        again = await client.post(f"/v1/requests/{request_id}/cancel", headers=bearer(user_id))
        unknown = await client.delete(f"/v1/requests/{uuid.uuid4()}", headers=bearer(user_id))

    assert (stranger.status_code, error_of(stranger)["code"]) == (404, "not_found")
    assert unknown.status_code == 404
    assert first.status_code == 200
    assert (first.json()["status"], first.json()["stage"]) == ("cancelled", "cancelled")
    assert again.status_code == 200
    assert again.json() == first.json()
    row = await db.fetchrow("SELECT status, completed_at FROM workout_plan_requests WHERE id = $1", request_id)
    assert row is not None
    assert row["status"] == "cancelled"
    assert row["completed_at"] is not None
    message = await js.get_last_msg(WORKOUT_EVENTS.name, PLAN_CANCELLED)
    assert message.data is not None
    assert PlanCancelled.model_validate_json(message.data).request_id == request_id


async def test_a_request_that_already_ended_cannot_be_cancelled(
    nats_url: str, database_url: str, db: asyncpg.Connection
) -> None:
    user_id = uuid.uuid4()
    async with serving(create_app(settings_for(nats_url, database_url))) as client:
        request_id = await accept(client, user_id)
        await db.execute(
            "UPDATE workout_plan_requests SET status = 'failed', error = 'timeout' WHERE id = $1", request_id
        )
        response = await client.delete(f"/v1/requests/{request_id}", headers=bearer(user_id))

    assert (response.status_code, error_of(response)["code"]) == (409, "not_cancellable")
    assert await db.fetchval("SELECT status FROM workout_plan_requests WHERE id = $1", request_id) == "failed"


# Live status (server-sent events) ----------------------------------------------------------------


@dataclass(frozen=True)
class Sse:
    event: str
    id: str | None
    data: dict[str, Any]


async def read_events(response: httpx.Response) -> list[Sse]:
    """Every event until the server ends the stream (keep-alive comments skipped)."""
    events: list[Sse] = []
    fields: dict[str, str] = {}
    async for line in response.aiter_lines():
        if not line:
            if "data" in fields:
                events.append(Sse(fields.get("event", "message"), fields.get("id"), _json(fields["data"])))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")
    return events


def _json(text: str) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(text)
    return value


async def test_live_status_streams_from_any_replica_and_resumes_after_the_last_event_id(
    nats_url: str, database_url: str, bus: EventBus
) -> None:
    user_id = uuid.uuid4()
    settings = settings_for(nats_url, database_url)
    # Two replicas: one takes and cancels the request, the other serves its stream.
    async with serving(create_app(settings)) as taker, serving_over_http(create_app(settings)) as streamer:
        request_id = await accept(taker, user_id)
        async with streamer.stream("GET", f"/v1/requests/{request_id}/events", headers=bearer(user_id)) as live:
            assert live.status_code == 200
            assert live.headers["content-type"].startswith("text/event-stream")
            reading = asyncio.create_task(read_events(live))
            await asyncio.sleep(0.3)  # the stream is subscribed before its snapshot is sent
            await bus.announce(PlanProgress(request_id=request_id, status="processing", stage="generating"))
            await bus.announce(
                PlanProgress(
                    request_id=request_id,
                    status="processing",
                    stage="profiling",
                    exercises_total=12,
                    exercises_profiled=5,
                )
            )
            (await taker.delete(f"/v1/requests/{request_id}", headers=bearer(user_id))).raise_for_status()
            events = await asyncio.wait_for(reading, 10)

        first_progress = next(e for e in events if e.event == "progress")
        async with streamer.stream(
            "GET",
            f"/v1/requests/{request_id}/events",
            headers={**bearer(user_id), "Last-Event-ID": str(first_progress.id)},
        ) as resumed:
            replayed = await asyncio.wait_for(read_events(resumed), 10)

    assert events[0].event == "snapshot"
    assert (events[0].data["request_id"], events[0].data["status"]) == (str(request_id), "processing")
    progress = [e for e in events if e.event == "progress"]
    assert [(e.data["stage"], e.data["status"]) for e in progress] == [
        ("generating", "processing"),
        ("profiling", "processing"),
        ("cancelled", "cancelled"),
    ]
    assert progress[1].data["exercises_profiled"] == 5
    ids = [int(str(e.id)) for e in progress]
    assert ids == sorted(ids)
    assert [e.data["stage"] for e in replayed] == ["profiling", "cancelled"]
    assert all(e.event == "progress" for e in replayed)


async def test_a_stream_ends_on_the_stored_status_even_when_no_notice_arrives(
    nats_url: str, database_url: str, db: asyncpg.Connection
) -> None:
    user_id = uuid.uuid4()
    settings = settings_for(nats_url, database_url, stream_recheck_seconds=0.3)
    async with serving_over_http(create_app(settings)) as client:
        request_id = await accept(client, user_id)
        async with client.stream("GET", f"/v1/requests/{request_id}/events", headers=bearer(user_id)) as live:
            reading = asyncio.create_task(read_events(live))
            await asyncio.sleep(0.5)
            # What a persister that crashed right after its commit would leave: a status, no notice.
            await db.execute(
                "UPDATE workout_plan_requests SET status = 'failed', stage = 'planner', error = 'timeout'"
                " WHERE id = $1",
                request_id,
            )
            events = await asyncio.wait_for(reading, 10)

    assert [e.event for e in events] == ["snapshot", "snapshot"]
    assert (events[-1].data["status"], events[-1].data["error"]) == ("failed", "timeout")


async def test_a_stream_of_a_finished_request_is_one_snapshot(nats_url: str, database_url: str) -> None:
    user_id = uuid.uuid4()
    async with serving_over_http(create_app(settings_for(nats_url, database_url))) as client:
        request_id = await accept(client, user_id)
        (await client.delete(f"/v1/requests/{request_id}", headers=bearer(user_id))).raise_for_status()
        async with client.stream("GET", f"/v1/requests/{request_id}/events", headers=bearer(user_id)) as live:
            events = await asyncio.wait_for(read_events(live), 10)

    assert [(e.event, e.data["status"]) for e in events] == [("snapshot", "cancelled")]


async def test_another_users_stream_is_404_and_subscribes_to_nothing(
    nats_url: str, database_url: str, js: JetStreamContext
) -> None:
    owner = uuid.uuid4()
    async with serving_over_http(create_app(settings_for(nats_url, database_url))) as client:
        request_id = await accept(client, owner)
        before = (await js.stream_info("WORKOUT_PROGRESS")).state.consumer_count
        response = await client.get(f"/v1/requests/{request_id}/events", headers=bearer())
        after = (await js.stream_info("WORKOUT_PROGRESS")).state.consumer_count

    assert (response.status_code, error_of(response)["code"]) == (404, "not_found")
    assert str(request_id) not in response.text
    assert after == before


# CORS -------------------------------------------------------------------------------------------


async def test_cors_answers_only_the_configured_origins(nats_url: str, database_url: str) -> None:
    settings = settings_for(nats_url, database_url, cors_origins="https://app.example")
    preflight = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization"}
    async with serving(create_app(settings)) as client:
        allowed = await client.options("/v1/plans", headers={"Origin": "https://app.example", **preflight})
        refused = await client.options("/v1/plans", headers={"Origin": "https://evil.example", **preflight})

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "access-control-allow-origin" not in refused.headers


async def test_accepts_answer_as_every_other_route_does_cors_no_store_metrics_and_errors(
    nats_url: str, database_url: str, db: asyncpg.Connection
) -> None:
    """The accepts' fast lane (trigger.AcceptFront) keeps what the app's own stack gives a reply."""
    settings = settings_for(nats_url, database_url, cors_origins="https://app.example")
    origin = {"Origin": "https://app.example"}
    counted = HTTP_REQUESTS.labels("/functions/v1/trigger-workout-plan", "POST", "202")
    before = counted._value.get()
    owner = uuid.uuid4()
    async with serving(create_app(settings)) as client:
        path = "/functions/v1/trigger-workout-plan"
        accepted = await client.post(path, headers={**bearer(owner), **origin}, json={"userProfile": PROFILE})
        anonymous = await client.post(path, headers=origin, json={"userProfile": PROFILE})
        invalid = await client.post(path, headers={**bearer(owner), **origin}, json={"userProfile": " "})
        wrong_method = await client.get(path, headers={**bearer(owner), **origin})
    async with serving(create_app(settings), root_path="/gateway") as client:
        mounted = await client.post(f"/gateway{path}", headers=bearer(owner), json={"userProfile": PROFILE})

    assert accepted.status_code == 202, accepted.text
    assert mounted.status_code == 202, mounted.text
    assert await rows_of(db, owner) == 2
    assert counted._value.get() == before + 2
    assert (anonymous.status_code, error_of(anonymous)["code"]) == (401, "unauthorized")
    assert anonymous.headers["www-authenticate"] == "Bearer"
    assert (invalid.status_code, error_of(invalid)["code"]) == (422, "invalid_request")
    assert (wrong_method.status_code, wrong_method.headers["allow"]) == (405, "OPTIONS, POST")
    for reply in (accepted, anonymous, invalid, wrong_method):
        assert reply.headers["cache-control"] == "no-store", reply.text
        assert reply.headers["access-control-allow-origin"] == "https://app.example", reply.text
    assert "WWW-Authenticate" in anonymous.headers["access-control-expose-headers"]


async def test_another_users_request_and_plan_are_404_on_every_route(
    nats_url: str, database_url: str, db: asyncpg.Connection
) -> None:
    owner, stranger = uuid.uuid4(), bearer()
    async with serving_over_http(create_app(settings_for(nats_url, database_url))) as client:
        request_id = await accept(client, owner)
        # Complete the owner's plan as the persister would, so its plan id exists too.
        pool = await create_pool(database_url, 1, 2)
        try:
            generated, profiled = events_for(request_id, owner, fresh_names(2))
            store = PostgresPlanStore(pool)
            await store.store_plan(generated)
            for event in profiled:
                await store.store_profile(event)
        finally:
            await pool.close()
        plan_id = await db.fetchval("SELECT plan_id FROM workout_plan_requests WHERE id = $1", request_id)
        assert plan_id is not None
        answers = [
            await client.get(f"/v1/requests/{request_id}", headers=stranger),
            await client.get(f"/v1/requests/{request_id}/events", headers=stranger),
            await client.delete(f"/v1/requests/{request_id}", headers=stranger),
            await client.post(f"/v1/requests/{request_id}/cancel", headers=stranger),
            await client.get(f"/v1/plans/{plan_id}", headers=stranger),
        ]
        listed = await client.get("/v1/requests", headers=stranger)
        own = await client.get(f"/v1/plans/{plan_id}", headers=bearer(owner))

    for answer in answers:
        assert (answer.status_code, error_of(answer)["code"]) == (404, "not_found")
        assert str(request_id) not in answer.text
        assert str(plan_id) not in answer.text
    assert listed.json() == {"items": [], "next_cursor": None}
    assert own.status_code == 200
    assert await db.fetchval("SELECT status FROM workout_plan_requests WHERE id = $1", request_id) == "completed"


async def test_a_fresh_stream_follows_its_snapshot_with_the_newest_notice_already_sent(
    nats_url: str, database_url: str, bus: EventBus
) -> None:
    user_id = uuid.uuid4()
    async with serving_over_http(create_app(settings_for(nats_url, database_url))) as client:
        request_id = await accept(client, user_id)
        # What the app would miss otherwise: the planner started before the app opened the stream.
        await bus.announce(PlanProgress(request_id=request_id, status="processing", stage="queued"))
        await bus.announce(PlanProgress(request_id=request_id, status="processing", stage="generating"))
        async with client.stream("GET", f"/v1/requests/{request_id}/events", headers=bearer(user_id)) as live:
            reading = asyncio.create_task(read_events(live))
            await asyncio.sleep(0.3)
            (await client.delete(f"/v1/requests/{request_id}", headers=bearer(user_id))).raise_for_status()
            events = await asyncio.wait_for(reading, 10)

    assert [(e.event, e.data["stage"]) for e in events] == [
        ("snapshot", "queued"),
        ("progress", "generating"),
        ("progress", "cancelled"),
    ]
    assert events[0].id is None


async def test_a_burst_cannot_spend_past_the_users_daily_budget(
    nats_url: str, database_url: str, db: asyncpg.Connection
) -> None:
    # $0.05 a day, each plan reserved at $0.02 until it costs more: two fit, a third would not.
    settings = settings_for(
        nats_url,
        database_url,
        max_active_requests_per_user=50,
        user_daily_budget_usd=0.05,
        plan_cost_estimate_usd=0.02,
    )
    user_id = uuid.uuid4()
    async with serving(create_app(settings)) as client:
        burst = await asyncio.gather(
            *(
                client.post("/v1/plans", headers=bearer(user_id), json={"userProfile": f"{PROFILE} #{i}"})
                for i in range(8)
            )
        )
        accepted = [uuid.UUID(r.json()["request_id"]) for r in burst if r.status_code == 202]
        # One of them turns out cheap (its plan cost $0.001): the budget frees what it did not use.
        await db.execute(
            "UPDATE workout_plan_requests SET status = 'failed', error = 'x', cost_usd = 0.001 WHERE id = $1",
            accepted[0],
        )
        after_refund = await client.post("/v1/plans", headers=bearer(user_id), json={"userProfile": PROFILE})
        over = await client.post("/v1/plans", headers=bearer(user_id), json={"userProfile": PROFILE})

    assert sorted(r.status_code for r in burst) == [202] * 2 + [429] * 6
    refused = next(r for r in burst if r.status_code == 429)
    assert error_of(refused)["code"] == "quota_exceeded"
    assert "budget" in error_of(refused)["message"]
    assert int(refused.headers["Retry-After"]) > 0
    assert after_refund.status_code == 202
    assert over.status_code == 429
    assert await rows_of(db, user_id) == 3


async def test_the_global_daily_budget_holds_across_users(
    nats_url: str, database_url: str, db: asyncpg.Connection
) -> None:
    spent_today = await db.fetchval(
        "SELECT coalesce(sum(CASE WHEN status = 'processing' THEN greatest(cost_usd, 0.02) ELSE cost_usd END), 0)"
        "::float8 FROM workout_plan_requests WHERE created_at > clock_timestamp() - interval '1 day'"
    )
    # Room for exactly three more plans at $0.02, whatever earlier tests left in this database.
    settings = settings_for(
        nats_url,
        database_url,
        global_daily_budget_usd=spent_today + 0.065,
        plan_cost_estimate_usd=0.02,
    )
    users = [uuid.uuid4() for _ in range(6)]
    async with serving(create_app(settings)) as client:
        burst = await asyncio.gather(
            *(client.post("/v1/plans", headers=bearer(user), json={"userProfile": PROFILE}) for user in users)
        )

    assert sorted(r.status_code for r in burst) == [202] * 3 + [429] * 3
    assert sum([await rows_of(db, user) for user in users]) == 3
