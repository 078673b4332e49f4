"""The gateway against a real NATS JetStream and Postgres: what it stores, publishes and answers."""

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import nats
import pytest
from nats.js import JetStreamContext

from contracts.events import Event, PlanRequested
from contracts.streams import WORKOUT_EVENTS
from contracts.subjects import PLAN_REQUESTED
from service_runtime.bus import EventBus
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from tests.integration.gateway_client import (
    ACCEPTED,
    OTHER_SECRET,
    PLAN_PATHS,
    PROFILE,
    SECRET,
    bearer,
    error_of,
    serving,
    wrong_audience_token,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(nats_url: str, database_url: str) -> GatewaySettings:
    return GatewaySettings(nats_url=nats_url, database_url=database_url, supabase_jwt_secret=SECRET)


@pytest.fixture
async def client(settings: GatewaySettings) -> AsyncIterator[httpx.AsyncClient]:
    async with serving(create_app(settings)) as client:
        yield client


async def stored_and_published(db: asyncpg.Connection, js: JetStreamContext) -> tuple[int, int]:
    rows = await db.fetchval("SELECT count(*) FROM workout_plan_requests")
    info = await js.stream_info(WORKOUT_EVENTS.name)
    return rows, info.state.messages


@pytest.mark.parametrize("path", PLAN_PATHS)
async def test_a_plan_request_is_stored_as_processing_and_announced_on_the_stream(
    client: httpx.AsyncClient, db: asyncpg.Connection, js: JetStreamContext, path: str
) -> None:
    user_id = uuid.uuid4()

    response = await client.post(
        path, headers=bearer(user_id), json={"userProfile": PROFILE, "systemPrompt": "Keep it under an hour."}
    )

    assert response.status_code == 202
    body = response.json()
    request_id = uuid.UUID(body["request_id"])
    assert body == {"request_id": str(request_id), "status": "processing", "message": ACCEPTED}
    row = await db.fetchrow("SELECT * FROM workout_plan_requests WHERE id = $1", request_id)
    assert row is not None
    assert (row["user_id"], row["status"], row["stage"]) == (user_id, "processing", "queued")
    assert (row["user_profile"], row["system_prompt"]) == (PROFILE, "Keep it under an hour.")
    message = await js.get_last_msg(WORKOUT_EVENTS.name, PLAN_REQUESTED)
    assert message.headers is not None
    assert message.headers["Nats-Msg-Id"] == str(request_id)
    assert message.data is not None
    event = PlanRequested.model_validate_json(message.data)
    assert (event.request_id, event.user_id, event.user_profile) == (request_id, user_id, PROFILE)
    assert event.system_prompt == "Keep it under an hour."


async def test_the_request_row_and_its_outbox_row_commit_before_the_event_is_published(
    settings: GatewaySettings, db: asyncpg.Connection
) -> None:
    seen_while_publishing: list[tuple[int, int]] = []

    class ProbingPublisher:
        async def publish(self, event: Event) -> None:
            rows = await db.fetchval("SELECT count(*) FROM workout_plan_requests WHERE id = $1", event.request_id)
            staged = await db.fetchval(
                "SELECT count(*) FROM outbox WHERE payload::jsonb ->> 'request_id' = $1", str(event.request_id)
            )
            seen_while_publishing.append((rows, staged))

    async with serving(create_app(settings, publisher=ProbingPublisher())) as client:
        response = await client.post("/v1/plans", headers=bearer(), json={"userProfile": PROFILE})

    assert response.status_code == 202
    assert seen_while_publishing == [(1, 1)]
    request_id = response.json()["request_id"]
    assert await db.fetchval("SELECT status FROM workout_plan_requests WHERE id = $1", uuid.UUID(request_id)) == (
        "processing"
    )
    assert await db.fetchval("SELECT count(*) FROM outbox WHERE payload::jsonb ->> 'request_id' = $1", request_id) == 0


async def test_unknown_body_fields_are_ignored_and_texts_are_trimmed(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    response = await client.post(
        "/functions/v1/trigger-workout-plan",
        headers=bearer(),
        json={"userProfile": f"  {PROFILE}\n", "systemPrompt": "   ", "appVersion": "2.3.1"},
    )

    assert response.status_code == 202
    row = await db.fetchrow(
        "SELECT user_profile, system_prompt FROM workout_plan_requests WHERE id = $1",
        uuid.UUID(response.json()["request_id"]),
    )
    assert row is not None
    assert (row["user_profile"], row["system_prompt"]) == (PROFILE, None)


@pytest.mark.parametrize(
    ("headers", "content"),
    [
        pytest.param({}, json.dumps({"userProfile": PROFILE}), id="missing-header"),
        pytest.param({"Authorization": "Basic dXNlcjpwYXNz"}, json.dumps({"userProfile": PROFILE}), id="not-bearer"),
        pytest.param({"Authorization": "Bearer garbage"}, json.dumps({"userProfile": PROFILE}), id="garbage"),
        pytest.param(bearer(ttl_seconds=-60), json.dumps({"userProfile": PROFILE}), id="expired"),
        pytest.param(
            {"Authorization": f"Bearer {wrong_audience_token()}"},
            json.dumps({"userProfile": PROFILE}),
            id="wrong-audience",
        ),
        pytest.param(bearer(secret=OTHER_SECRET), json.dumps({"userProfile": PROFILE}), id="wrong-secret"),
        pytest.param({}, "this is not json", id="missing-header-and-invalid-body"),
    ],
)
@pytest.mark.parametrize("path", PLAN_PATHS)
async def test_a_plan_request_without_a_valid_token_is_unauthorized_and_changes_nothing(
    client: httpx.AsyncClient,
    db: asyncpg.Connection,
    js: JetStreamContext,
    *,
    path: str,
    headers: dict[str, str],
    content: str,
) -> None:
    before = await stored_and_published(db, js)

    response = await client.post(path, headers={**headers, "Content-Type": "application/json"}, content=content)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert error_of(response)["code"] == "unauthorized"
    assert await stored_and_published(db, js) == before


@pytest.mark.parametrize("path", ["/v1/requests/{id}", "/v1/plans/{id}"])
async def test_reads_are_unauthorized_before_the_id_is_even_looked_at(client: httpx.AsyncClient, path: str) -> None:
    for request_id in (str(uuid.uuid4()), "not-a-uuid"):
        response = await client.get(path.format(id=request_id), headers={"Authorization": "Bearer garbage"})

        assert response.status_code == 401
        assert error_of(response)["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("content", "loc"),
    [
        pytest.param(json.dumps({"systemPrompt": "hi"}), ["body", "userProfile"], id="missing-user-profile"),
        pytest.param(json.dumps({"userProfile": ""}), ["body", "userProfile"], id="empty"),
        pytest.param(json.dumps({"userProfile": " \n\t "}), ["body", "userProfile"], id="whitespace-only"),
        pytest.param(json.dumps({"userProfile": "x" * 8001}), ["body", "userProfile"], id="user-profile-too-long"),
        pytest.param(
            json.dumps({"userProfile": PROFILE, "systemPrompt": "x" * 4001}),
            ["body", "systemPrompt"],
            id="system-prompt-too-long",
        ),
        pytest.param("userProfile=build+muscle", ["body"], id="not-json"),
        pytest.param("", ["body"], id="empty-body"),
        pytest.param(json.dumps({"userProfile": 42}), ["body", "userProfile"], id="wrong-type"),
        pytest.param(
            json.dumps({"userProfile": PROFILE, "systemPrompt": 7}), ["body", "systemPrompt"], id="bad-prompt"
        ),
        pytest.param(json.dumps([PROFILE]), ["body"], id="not-an-object"),
    ],
)
async def test_an_invalid_plan_request_is_rejected_and_changes_nothing(
    client: httpx.AsyncClient, db: asyncpg.Connection, js: JetStreamContext, content: str, loc: list[str]
) -> None:
    before = await stored_and_published(db, js)

    response = await client.post(
        "/functions/v1/trigger-workout-plan",
        headers={**bearer(), "Content-Type": "application/json"},
        content=content,
    )

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert [detail["loc"] for detail in error["details"]] == [loc]
    assert await stored_and_published(db, js) == before


async def test_a_body_beyond_the_size_cap_is_refused_unread(
    client: httpx.AsyncClient, db: asyncpg.Connection, js: JetStreamContext
) -> None:
    before = await stored_and_published(db, js)

    response = await client.post(
        "/v1/plans", headers=bearer(), json={"userProfile": PROFILE, "padding": "x" * 1_000_000}
    )

    assert response.status_code == 413
    assert error_of(response)["code"] == "invalid_request"
    assert await stored_and_published(db, js) == before


async def test_the_owner_sees_a_snapshot_of_their_request(client: httpx.AsyncClient) -> None:
    user_id = uuid.uuid4()
    accepted = await client.post("/v1/plans", headers=bearer(user_id), json={"userProfile": PROFILE})
    request_id = accepted.json()["request_id"]

    response = await client.get(f"/v1/requests/{request_id}", headers=bearer(user_id))

    assert response.status_code == 200
    snapshot = response.json()
    assert set(snapshot) == {
        "request_id",
        "status",
        "stage",
        "error",
        "plan_id",
        "created_at",
        "updated_at",
        "completed_at",
    }
    assert snapshot["request_id"] == request_id
    assert (snapshot["status"], snapshot["stage"]) == ("processing", "queued")
    assert snapshot["error"] is None
    assert snapshot["plan_id"] is None
    assert snapshot["completed_at"] is None
    assert snapshot["created_at"] <= snapshot["updated_at"]


async def test_another_users_request_is_indistinguishable_from_a_missing_one(client: httpx.AsyncClient) -> None:
    accepted = await client.post("/v1/plans", headers=bearer(uuid.uuid4()), json={"userProfile": PROFILE})
    someone_else = bearer(uuid.uuid4())

    theirs = await client.get(f"/v1/requests/{accepted.json()['request_id']}", headers=someone_else)
    missing = await client.get(f"/v1/requests/{uuid.uuid4()}", headers=someone_else)

    assert (theirs.status_code, missing.status_code) == (404, 404)
    assert theirs.json() == missing.json()
    assert error_of(theirs)["code"] == "not_found"


@pytest.mark.parametrize("path", ["/v1/requests/not-a-uuid", "/v1/plans/12345"])
async def test_a_malformed_id_in_the_path_is_invalid(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, headers=bearer())

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert error["details"][0]["loc"][0] == "path"


SQUAT_PROFILE = {
    "name": "Goblet Squat",
    "description": "A squat holding one dumbbell at the chest.",
    "instructions": ["Hold the bell.", "Sit down between the heels.", "Stand up."],
    "primary_muscles": ["quadriceps", "glutes"],
    "secondary_muscles": ["core"],
    "equipment": ["dumbbell"],
    "cues": ["Elbows inside the knees."],
    "difficulty": "beginner",
}


async def seed_plan(db: asyncpg.Connection, user_id: uuid.UUID, *, status: str = "complete") -> uuid.UUID:
    """A plan as the persister leaves it: 2 weeks x 2 days x 2 entries, inserted out of order."""
    request_id, plan_id, tag = uuid.uuid4(), uuid.uuid4(), uuid.uuid4().hex[:8]
    squat, plank = f"goblet-squat-{tag}", f"plank-{tag}"
    async with db.transaction():
        await db.execute(
            "INSERT INTO exercises (key, name, profile, profiled_at) VALUES ($1, 'Goblet Squat', $2::jsonb, now()),"
            " ($3, 'Plank', NULL, NULL)",
            squat,
            json.dumps(SQUAT_PROFILE),
            plank,
        )
        await db.execute(
            "INSERT INTO workout_plan_requests (id, user_id, status, stage, user_profile, plan_id, completed_at)"
            " VALUES ($1, $2, 'completed', 'done', $3, $4, now())",
            request_id,
            user_id,
            PROFILE,
            plan_id,
        )
        await db.execute(
            "INSERT INTO workout_plans (id, request_id, user_id, assembly, title, summary, model, completed_at)"
            " VALUES ($1, $2, $3, $4, 'Home hypertrophy', 'Eight weeks of dumbbell work.', 'test', now())",
            plan_id,
            request_id,
            user_id,
            status,
        )
        entries = [
            (plan_id, week, day, position, f"Theme {week}", f"Focus {week}.{day}", key, sets, f"{week}x{day}")
            for week in (1, 2)
            for day in (1, 3)
            for position, key, sets in ((1, squat, 4), (2, plank, 3))
        ]
        await db.executemany(
            "INSERT INTO workout_entries (plan_id, week, day_of_week, position, week_theme, day_focus, exercise_key,"
            " exercise_name, sets, reps, rest_seconds, notes)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, '8-12', 90, $9)",
            list(reversed(entries)),
        )
    return plan_id


async def test_the_owner_gets_a_completed_plan_nested_by_week_day_and_entry(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    user_id = uuid.uuid4()
    plan_id = await seed_plan(db, user_id)

    response = await client.get(f"/v1/plans/{plan_id}", headers=bearer(user_id))

    assert response.status_code == 200
    plan = response.json()
    assert set(plan) == {"plan_id", "request_id", "title", "summary", "created_at", "completed_at", "weeks"}
    assert plan["plan_id"] == str(plan_id)
    assert (plan["title"], plan["summary"]) == ("Home hypertrophy", "Eight weeks of dumbbell work.")
    assert [week["week"] for week in plan["weeks"]] == [1, 2]
    assert [week["theme"] for week in plan["weeks"]] == ["Theme 1", "Theme 2"]
    for week in plan["weeks"]:
        assert set(week) == {"week", "theme", "days"}
        assert [(day["day"], day["focus"]) for day in week["days"]] == [
            (1, f"Focus {week['week']}.1"),
            (3, f"Focus {week['week']}.3"),
        ]
        for day in week["days"]:
            assert set(day) == {"day", "focus", "entries"}
            assert [entry["position"] for entry in day["entries"]] == [1, 2]
            assert [entry["notes"] for entry in day["entries"]] == [f"{week['week']}x{day['day']}"] * 2
    squat, plank = plan["weeks"][0]["days"][0]["entries"]
    assert set(squat) == {"position", "exercise", "sets", "reps", "rest_seconds", "notes"}
    assert (squat["sets"], squat["reps"], squat["rest_seconds"]) == (4, "8-12", 90)
    assert squat["exercise"]["key"].startswith("goblet-squat-")
    assert (squat["exercise"]["name"], squat["exercise"]["profile"]) == ("Goblet Squat", SQUAT_PROFILE)
    assert set(plank["exercise"]) == {"key", "name", "profile"}
    assert (plank["exercise"]["name"], plank["exercise"]["profile"]) == ("Plank", None)


async def test_a_plan_is_not_found_for_another_user_or_before_it_is_complete(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    owner = uuid.uuid4()
    complete = await seed_plan(db, owner)
    assembling = await seed_plan(db, owner, status="assembling")

    someone_elses = await client.get(f"/v1/plans/{complete}", headers=bearer(uuid.uuid4()))
    unfinished = await client.get(f"/v1/plans/{assembling}", headers=bearer(owner))
    missing = await client.get(f"/v1/plans/{uuid.uuid4()}", headers=bearer(owner))

    assert [r.status_code for r in (someone_elses, unfinished, missing)] == [404, 404, 404]
    assert someone_elses.json() == unfinished.json() == missing.json()
    assert error_of(missing)["code"] == "not_found"


async def test_an_unreachable_event_bus_still_accepts_and_the_relay_publishes_later(
    settings: GatewaySettings, db: asyncpg.Connection, js: JetStreamContext
) -> None:
    class FlakyBus:
        """Down for the request path, back for the relay."""

        def __init__(self) -> None:
            self.attempts: list[str] = []
            self.real = EventBus(settings.nats_url, client_name="test", publish_timeout_seconds=5)

        async def publish(self, event: Event) -> None:
            self.attempts.append(str(event.request_id))
            if len(self.attempts) == 1:
                raise nats.errors.NoServersError
            await self.real.publish(event)

    bus = FlakyBus()
    fast_relay = settings.model_copy(update={"outbox_relay_interval_seconds": 0.1, "outbox_relay_after_seconds": 0.0})
    async with bus.real, serving(create_app(fast_relay, publisher=bus)) as client:
        response = await client.post("/v1/plans", headers=bearer(), json={"userProfile": PROFILE})
        assert response.status_code == 202
        request_id = response.json()["request_id"]
        async with asyncio.timeout(10):
            while await db.fetchval(
                "SELECT count(*) FROM outbox WHERE payload::jsonb ->> 'request_id' = $1", request_id
            ):
                await asyncio.sleep(0.05)

    assert bus.attempts[0] == request_id
    assert bus.attempts.count(request_id) == 2  # the failed fast path, then the relay
    # JetStream has it: the same Nats-Msg-Id is now refused as a duplicate.
    event = PlanRequested(request_id=uuid.UUID(request_id), user_id=uuid.uuid4(), user_profile=PROFILE)
    ack = await js.publish(PLAN_REQUESTED, event.model_dump_json().encode(), headers={"Nats-Msg-Id": request_id})
    assert ack.duplicate


async def test_a_broker_that_never_answers_does_not_hold_the_reply(
    settings: GatewaySettings, db: asyncpg.Connection
) -> None:
    class SilentBus:
        async def publish(self, event: Event) -> None:
            await asyncio.Event().wait()

    quick = settings.model_copy(update={"publish_wait_seconds": 0.2, "outbox_relay_interval_seconds": 60})
    async with serving(create_app(quick, publisher=SilentBus())) as client:
        started = time.monotonic()
        response = await client.post("/v1/plans", headers=bearer(), json={"userProfile": PROFILE})
        elapsed = time.monotonic() - started

    assert response.status_code == 202
    assert elapsed < 5, f"the reply waited {elapsed:.1f}s for the broker"
    request_id = response.json()["request_id"]
    left = await db.execute("DELETE FROM outbox WHERE payload::jsonb ->> 'request_id' = $1", request_id)
    assert left == "DELETE 1"  # left to the relay (removed here so no later test relays it)


async def test_the_gateway_reports_ready_when_nats_and_postgres_answer(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"postgres": True, "nats": True}


async def test_errors_outside_the_routes_use_the_same_shape(client: httpx.AsyncClient) -> None:
    no_route = await client.get("/v2/nothing-here", headers=bearer())
    wrong_method = await client.put("/v1/plans", headers=bearer())

    assert (no_route.status_code, error_of(no_route)["code"]) == (404, "not_found")
    assert (wrong_method.status_code, error_of(wrong_method)["code"]) == (405, "invalid_request")


async def test_an_idempotency_key_sent_ten_times_creates_one_request(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    user_id = uuid.uuid4()
    headers = {**bearer(user_id), "Idempotency-Key": f"retry-{uuid.uuid4()}"}

    responses = await asyncio.gather(
        *(
            client.post("/functions/v1/trigger-workout-plan", headers=headers, json={"userProfile": PROFILE})
            for _ in range(10)
        )
    )

    assert [r.status_code for r in responses] == [202] * 10
    assert len({r.json()["request_id"] for r in responses}) == 1
    assert await db.fetchval("SELECT count(*) FROM workout_plan_requests WHERE user_id = $1", user_id) == 1
    request_id = responses[0].json()["request_id"]
    # Its one outbox row goes once the event is published, in the background, with others.
    async with asyncio.timeout(5):
        while await db.fetchval("SELECT count(*) FROM outbox WHERE payload::jsonb ->> 'request_id' = $1", request_id):
            await asyncio.sleep(0.05)


async def test_a_reused_idempotency_key_with_another_body_is_a_conflict(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    user_id = uuid.uuid4()
    headers = {**bearer(user_id), "Idempotency-Key": "same-key"}
    first = await client.post("/v1/plans", headers=headers, json={"userProfile": PROFILE})
    other = await client.post("/v1/plans", headers=headers, json={"userProfile": PROFILE + " And yoga."})
    someone_else = await client.post(
        "/v1/plans", headers={**bearer(uuid.uuid4()), "Idempotency-Key": "same-key"}, json={"userProfile": PROFILE}
    )

    assert first.status_code == 202
    assert other.status_code == 409
    assert error_of(other)["code"] == "idempotency_conflict"
    assert someone_else.status_code == 202  # keys are per user
    assert someone_else.json()["request_id"] != first.json()["request_id"]
    assert await db.fetchval("SELECT count(*) FROM workout_plan_requests WHERE user_id = $1", user_id) == 1


async def test_a_malformed_idempotency_key_is_rejected_and_writes_nothing(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    user_id = uuid.uuid4()
    response = await client.post(
        "/v1/plans", headers={**bearer(user_id), "Idempotency-Key": "x" * 201}, json={"userProfile": PROFILE}
    )

    assert response.status_code == 422
    assert await db.fetchval("SELECT count(*) FROM workout_plan_requests WHERE user_id = $1", user_id) == 0


async def test_past_its_accepts_in_flight_the_gateway_sheds_at_once_with_503_and_stores_nothing(
    settings: GatewaySettings, db: asyncpg.Connection
) -> None:
    held = asyncio.Event()
    release = asyncio.Event()

    class HeldPublisher:
        """Holds the first publish open, as a slow broker would, so its accept stays in flight."""

        async def publish(self, event: Event) -> None:
            if not held.is_set():
                held.set()
                await release.wait()

    one_at_a_time = settings.model_copy(update={"max_accepts_in_flight": 1, "publish_wait_seconds": 30.0})
    async with serving(create_app(one_at_a_time, publisher=HeldPublisher())) as client:
        first = asyncio.create_task(client.post("/v1/plans", headers=bearer(), json={"userProfile": PROFILE}))
        await asyncio.wait_for(held.wait(), 10)
        shed_user = uuid.uuid4()
        shed = await client.post(
            "/functions/v1/trigger-workout-plan", headers=bearer(shed_user), json={"userProfile": PROFILE}
        )
        release.set()
        accepted = await first
        after = await client.post("/v1/plans", headers=bearer(shed_user), json={"userProfile": PROFILE})

    assert shed.status_code == 503
    assert shed.headers["retry-after"] == "1"
    assert error_of(shed)["code"] == "unavailable"
    assert accepted.status_code == 202 and after.status_code == 202
    # The shed request changed nothing: the user's one request is the one accepted after it.
    assert await db.fetchval("SELECT count(*) FROM workout_plan_requests WHERE user_id = $1", shed_user) == 1


async def test_a_week_regeneration_is_checked_before_anything_is_stored(
    client: httpx.AsyncClient, db: asyncpg.Connection
) -> None:
    owner = uuid.uuid4()
    plan_id = await seed_plan(db, owner)  # two weeks only: not a plan this service wrote
    path = f"/v1/plans/{plan_id}/weeks/2/regenerate"

    unauthenticated = await client.post(path, json={"instruction": "less"})
    bad_weeks = [await client.post(f"/v1/plans/{plan_id}/weeks/{n}/regenerate", headers=bearer(owner)) for n in (0, 9)]
    bad_bodies = [
        await client.post(path, headers=bearer(owner), json={"instruction": "x" * 1001}),
        await client.post(path, headers=bearer(owner), json={"instruction": 7}),
        await client.post(path, headers=bearer(owner), json={"instruction": "knee\u0000"}),
        await client.post(path, headers=bearer(owner), content=b"{not json"),
    ]
    stranger = await client.post(path, headers=bearer(uuid.uuid4()), json={"instruction": "less"})
    unreadable = await client.post(path, headers=bearer(owner))  # an empty body is no instruction
    history = await client.get(f"/v1/plans/{plan_id}/weeks/2", headers=bearer(owner))

    assert unauthenticated.status_code == 401
    assert [r.status_code for r in bad_weeks] == [422, 422]
    assert [r.status_code for r in bad_bodies] == [422, 422, 422, 422]
    assert all(error_of(r)["code"] == "invalid_request" for r in (*bad_weeks, *bad_bodies))
    assert stranger.status_code == 404 and error_of(stranger)["code"] == "not_found"
    assert unreadable.status_code == 409 and error_of(unreadable)["code"] == "not_regenerable"
    assert history.status_code == 200
    assert [(v["version"], v["current"]) for v in history.json()["versions"]] == [(1, True)]
    assert await db.fetchval("SELECT count(*) FROM workout_plan_requests WHERE user_id = $1", owner) == 1


async def test_a_decision_on_a_skeleton_is_checked_before_anything_changes(client: httpx.AsyncClient) -> None:
    owner = uuid.uuid4()
    accepted = await client.post("/v1/plans", headers=bearer(owner), json={"userProfile": PROFILE})
    path = f"/v1/requests/{accepted.json()['request_id']}/skeleton"

    invalid = [
        await client.post(path, headers=bearer(owner), json={"decision": "maybe"}),
        await client.post(path, headers=bearer(owner), json={"decision": "adjust"}),
        await client.post(path, headers=bearer(owner), json={"decision": "adjust", "instruction": "   "}),
        await client.post(path, headers=bearer(owner), content=b""),
        await client.post(
            "/v1/plans", headers=bearer(owner), json={"userProfile": PROFILE, "reviewSkeletonSeconds": -1}
        ),
    ]
    stranger = await client.post(path, headers=bearer(uuid.uuid4()), json={"decision": "confirm"})
    not_waiting = await client.post(path, headers=bearer(owner), json={"decision": "confirm"})
    shown = await client.get(path, headers=bearer(owner))

    assert [r.status_code for r in invalid] == [422] * 5
    assert stranger.status_code == 404
    assert not_waiting.status_code == 409 and error_of(not_waiting)["code"] == "not_waiting"
    assert shown.status_code == 200
    assert (shown.json()["stage"], shown.json()["outline"], shown.json()["review_seconds"]) == ("queued", None, 0)
