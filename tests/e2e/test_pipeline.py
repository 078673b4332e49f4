"""One request end to end: the app's call, the four services as processes, the rows it leaves."""

import asyncio
import json
import os
import re
import sys
import time
import uuid

import asyncpg
import httpx
import nats
import nats.js.errors
import pytest
from prometheus_client.parser import text_string_to_metric_families

from contracts.plan import PlanSkeleton
from services.planner.scores import DIMENSIONS
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

SEED_PROFILE = "I want to build muscle, 3x per week, I have a full gym"


async def submit(client: httpx.AsyncClient, stack: Stack, profile: str, user_id: uuid.UUID) -> str:
    started = time.perf_counter()
    response = await client.post(
        f"{stack.gateway_url}/functions/v1/trigger-workout-plan",
        headers={"Authorization": f"Bearer {stack.token(user_id)}"},
        json={"userProfile": profile},
    )
    print(f"202 in {1000 * (time.perf_counter() - started):.1f} ms")
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "processing"
    assert body["message"] == "Workout plan generation started. You will be notified when complete."
    return str(body["request_id"])


async def wait_for_end(
    client: httpx.AsyncClient, stack: Stack, request_id: str, user_id: uuid.UUID, timeout: float = 90
) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {stack.token(user_id)}"}
    async with asyncio.timeout(timeout):
        while True:
            response = await client.get(f"{stack.gateway_url}/v1/requests/{request_id}", headers=headers)
            assert response.status_code == 200, response.text
            snapshot: dict[str, object] = response.json()
            if snapshot["status"] != "processing":
                return snapshot
            await asyncio.sleep(0.2)


async def test_a_seed_request_becomes_a_complete_plan(stack: Stack) -> None:
    user = uuid.uuid4()
    async with httpx.AsyncClient(timeout=30) as client:
        request_id = await submit(client, stack, SEED_PROFILE, user)
        snapshot = await wait_for_end(client, stack, request_id, user)
        assert snapshot["status"] == "completed", snapshot
        plan = (
            await client.get(
                f"{stack.gateway_url}/v1/plans/{snapshot['plan_id']}",
                headers={"Authorization": f"Bearer {stack.token(user)}"},
            )
        ).json()
        other = await client.get(
            f"{stack.gateway_url}/v1/plans/{snapshot['plan_id']}",
            headers={"Authorization": f"Bearer {stack.token(uuid.uuid4())}"},
        )
    assert other.status_code == 404
    assert [w["week"] for w in plan["weeks"]] == list(range(1, 9))
    assert all(e["exercise"]["profile"] for w in plan["weeks"] for d in w["days"] for e in d["entries"])

    conn = await asyncpg.connect(stack.database_url)
    try:
        rid = uuid.UUID(request_id)
        plans = await conn.fetch(
            "SELECT id, status, created_at, prompt_version, model, quality, skeleton FROM workout_plans"
            " WHERE request_id = $1",
            rid,
        )
        assert len(plans) == 1
        # Parallel generation, the default.
        assert plans[0]["prompt_version"] == "skeleton-v1+skeleton-context-v2+week-v3+plan-v1"
        # Its quality scores, stored beside the prompt version and model they judge.
        quality = json.loads(plans[0]["quality"])
        assert set(quality) == {*DIMENSIONS, "overall"} and all(0 <= v <= 1 for v in quality.values())
        assert plans[0]["model"] == "gpt-4o-mini"
        # The skeleton its weeks were written against, kept to write a week again later.
        skeleton = PlanSkeleton.model_validate_json(plans[0]["skeleton"])
        assert skeleton.days_per_week == 3 and [w.week for w in skeleton.weeks] == list(range(1, 9))
        plan_id = plans[0]["id"]
        weeks = await conn.fetch("SELECT DISTINCT week FROM workout_entries WHERE plan_id = $1 ORDER BY week", plan_id)
        assert [w["week"] for w in weeks] == list(range(1, 9))
        unprofiled = await conn.fetchval(
            "SELECT count(*) FROM workout_entries e LEFT JOIN exercises x ON x.key = e.exercise_key"
            " WHERE e.plan_id = $1 AND x.profile IS NULL",
            plan_id,
        )
        assert unprofiled == 0
        order = await conn.fetchrow(
            "SELECT r.status, r.completed_at, r.completion_tokens,"
            " (SELECT max(created_at) FROM workout_entries WHERE plan_id = $2) AS entries_at,"
            " (SELECT max(x.profiled_at) FROM workout_entries e JOIN exercises x ON x.key = e.exercise_key"
            "   WHERE e.plan_id = $2) AS profiles_at"
            " FROM workout_plan_requests r WHERE r.id = $1",
            rid,
            plan_id,
        )
        assert order["status"] == "completed"
        assert order["completed_at"] >= max(plans[0]["created_at"], order["entries_at"], order["profiles_at"])
        assert order["completion_tokens"] > 0
    finally:
        await conn.close()


async def test_a_plan_over_a_warm_catalogue_sends_no_profile_message(stack: Stack) -> None:
    # The seed plan above filled the catalogue with the exercises this one uses.
    user = uuid.uuid4()
    nc = await nats.connect(stack.nats_url)
    try:
        before = await _messages_by_subject(nc)
        async with httpx.AsyncClient(timeout=30) as client:
            request_id = await submit(client, stack, SEED_PROFILE, user)
            snapshot = await wait_for_end(client, stack, request_id, user)
        after = await _messages_by_subject(nc)
    finally:
        await nc.close()
    assert snapshot["status"] == "completed", snapshot
    sent = {subject: after.get(subject, 0) - before.get(subject, 0) for subject in after}
    assert sent.get("exercise.profile.needed", 0) == 0, sent
    assert sent.get("exercise.profiled", 0) == 0, sent
    assert (sent["plan.requested"], sent["plan.generated"], sent["plan.persisted"]) == (1, 1, 1)


async def _messages_by_subject(nc: nats.NATS) -> dict[str, int]:
    info = await nc.jetstream().stream_info("WORKOUT_EVENTS", subjects_filter=">")
    return dict(info.state.subjects or {})


async def test_a_reply_that_stays_invalid_ends_the_request_failed_with_a_reason(stack: Stack) -> None:
    user = uuid.uuid4()
    async with httpx.AsyncClient(timeout=30) as client:
        request_id = await submit(client, stack, f"{SEED_PROFILE} [[sim:fault=malformed]]", user)
        snapshot = await wait_for_end(client, stack, request_id, user)
    assert snapshot["status"] == "failed"
    assert "invalid_llm_reply" in str(snapshot["error"])
    conn = await asyncpg.connect(stack.database_url)
    try:
        count = await conn.fetchval("SELECT count(*) FROM workout_plans WHERE request_id = $1", uuid.UUID(request_id))
        assert count == 0
    finally:
        await conn.close()


async def test_two_overlapping_plans_run_together_and_each_exercise_is_profiled_once(stack: Stack) -> None:
    users = [uuid.uuid4(), uuid.uuid4()]
    async with httpx.AsyncClient(timeout=30) as client:
        ids = [await submit(client, stack, SEED_PROFILE, user) for user in users]
        snapshots = await asyncio.gather(*(wait_for_end(client, stack, i, u) for i, u in zip(ids, users, strict=True)))
    assert [s["status"] for s in snapshots] == ["completed", "completed"]
    conn = await asyncpg.connect(stack.database_url)
    try:
        keys = [
            {
                r["exercise_key"]
                for r in await conn.fetch(
                    "SELECT DISTINCT exercise_key FROM workout_entries WHERE plan_id = $1", uuid.UUID(str(s["plan_id"]))
                )
            }
            for s in snapshots
        ]
    finally:
        await conn.close()
    assert keys[0] & keys[1], "the simulator's plans should share exercises"
    with stack.simulator() as sim:
        stats = sim.get("/_sim/stats").json()
    # Over a catalogue earlier plans filled, none may be bought at all: the persister asks only
    # for what it lacks.
    per_exercise = stats["profiles_by_exercise"]
    assert max(per_exercise.values(), default=0) <= 1, {k: v for k, v in per_exercise.items() if v > 1}


async def test_a_plan_slower_than_the_lease_is_generated_once(stack: Stack) -> None:
    # The services run with a 3 s ack_wait; at 200 tokens/s the skeleton (~0.8k tokens) and then the
    # weeks (~0.7k tokens each, written at once) take about 8 s.
    user = uuid.uuid4()
    with stack.simulator() as sim:
        before = sim.get("/_sim/stats").json()["completions_by_schema"]
        sim.patch("/_sim/config", json={"tokens_per_second": 200}).raise_for_status()
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                started = time.perf_counter()
                request_id = await submit(client, stack, SEED_PROFILE, user)
                snapshot = await wait_for_end(client, stack, request_id, user, timeout=120)
                elapsed = time.perf_counter() - started
        finally:
            sim.patch("/_sim/config", json={"tokens_per_second": 20000}).raise_for_status()
        after = sim.get("/_sim/stats").json()["completions_by_schema"]
    assert snapshot["status"] == "completed"
    assert elapsed > 3 * 2, f"the plan took {elapsed:.1f}s: too fast to prove the lease was kept alive"
    bought = {kind: after.get(kind, 0) - before.get(kind, 0) for kind in ("PlanSkeleton", "TrainingWeek")}
    assert bought == {"PlanSkeleton": 1, "TrainingWeek": 8}
    nc = await nats.connect(stack.nats_url)
    try:
        info = await nc.jetstream().consumer_info("WORKOUT_EVENTS", "planner")
        assert info.num_redelivered == 0
    finally:
        await nc.drain()


async def test_ten_retries_with_one_idempotency_key_make_one_request_and_one_plan(stack: Stack) -> None:
    user = uuid.uuid4()
    headers = {"Authorization": f"Bearer {stack.token(user)}", "Idempotency-Key": f"flaky-network-{uuid.uuid4()}"}
    async with httpx.AsyncClient(timeout=30) as client:
        responses = await asyncio.gather(
            *(
                client.post(
                    f"{stack.gateway_url}/functions/v1/trigger-workout-plan",
                    headers=headers,
                    json={"userProfile": SEED_PROFILE},
                )
                for _ in range(10)
            )
        )
        assert {r.status_code for r in responses} == {202}
        (request_id,) = {r.json()["request_id"] for r in responses}
        snapshot = await wait_for_end(client, stack, request_id, user)
    assert snapshot["status"] == "completed", snapshot
    conn = await asyncpg.connect(stack.database_url)
    try:
        requests = await conn.fetchval("SELECT count(*) FROM workout_plan_requests WHERE user_id = $1", user)
        plans = await conn.fetchval("SELECT count(*) FROM workout_plans WHERE user_id = $1", user)
    finally:
        await conn.close()
    assert (requests, plans) == (1, 1)


async def test_cancel_stops_the_llm_call_of_a_request_being_planned(stack: Stack) -> None:
    user = uuid.uuid4()
    headers = {"Authorization": f"Bearer {stack.token(user)}"}
    nc = await nats.connect(stack.nats_url)
    async with httpx.AsyncClient(timeout=30) as client:
        # The simulator holds this call open for an hour: only a cancel ends it early.
        request_id = await submit(client, stack, f"{SEED_PROFILE} [[sim:fault=hang]]", user)
        with stack.simulator() as sim:
            abandoned_before = sim.get("/_sim/stats").json()["abandoned_total"]
            async with asyncio.timeout(30):  # until the planner says it started the call
                while True:
                    try:
                        notice = await nc.jetstream().get_last_msg("WORKOUT_PROGRESS", f"progress.{request_id}")
                    except nats.js.errors.NotFoundError:
                        notice = None
                    if notice is not None and notice.data is not None and b'"generating"' in notice.data:
                        break
                    await asyncio.sleep(0.1)
            await asyncio.sleep(0.5)
            cancelled = await client.delete(f"{stack.gateway_url}/v1/requests/{request_id}", headers=headers)
            async with asyncio.timeout(15):
                while sim.get("/_sim/stats").json()["abandoned_total"] == abandoned_before:
                    await asyncio.sleep(0.1)
        snapshot = await wait_for_end(client, stack, request_id, user)
    await nc.close()

    assert cancelled.status_code == 200, cancelled.text
    assert (snapshot["status"], snapshot["plan_id"]) == ("cancelled", None)


def test_every_worker_reports_its_dependencies_ready(stack: Stack) -> None:
    for name in ("planner", "profiler", "persister", "gateway"):
        response = httpx.get(f"{stack.health_urls[name]}/readyz")
        assert response.status_code == 200, (name, response.text)
        assert all(response.json()["checks"].values())
        assert "workout_messages_handled_total" in httpx.get(f"{stack.health_urls[name]}/metrics").text or (
            name == "gateway"
        )


async def test_the_cost_ledger_matches_the_tokens_the_simulator_served(stack: Stack) -> None:
    with stack.simulator() as sim:
        sim.post("/_sim/reset").raise_for_status()
    users = [uuid.uuid4() for _ in range(3)]
    profiles = [SEED_PROFILE, "Lose fat, 4x per week, dumbbells at home", f"{SEED_PROFILE} [[sim:fault=malformed]]"]
    async with httpx.AsyncClient(timeout=30) as client:
        ids = [await submit(client, stack, text, user) for text, user in zip(profiles, users, strict=True)]
        ends = await asyncio.gather(*(wait_for_end(client, stack, i, u) for i, u in zip(ids, users, strict=True)))
    assert [e["status"] for e in ends] == ["completed", "completed", "failed"]
    with stack.simulator() as sim:
        served = sim.get("/_sim/stats").json()
    conn = await asyncpg.connect(stack.database_url)
    try:
        async with asyncio.timeout(15):  # the ledger is written by its own consumer: let it catch up
            while True:
                # This test's requests only: a plan of the test before may have ended within the
                # second before this one began, and its calls are not among what the simulator served.
                ledger = await conn.fetchrow(
                    "SELECT coalesce(sum(prompt_tokens), 0) AS prompt,"
                    " coalesce(sum(completion_tokens), 0) AS completion, count(*) AS calls"
                    " FROM llm_calls WHERE request_id = ANY($1::uuid[])",
                    [uuid.UUID(i) for i in ids],
                )
                if ledger["completion"] >= served["completion_tokens_total"]:
                    break
                await asyncio.sleep(0.2)
        per_request = await conn.fetch(
            "SELECT id, cost_usd FROM workout_plan_requests WHERE id = ANY($1::uuid[])", [uuid.UUID(i) for i in ids]
        )
    finally:
        await conn.close()
    print(
        f"ledger {ledger['calls']} calls, {ledger['prompt']}+{ledger['completion']} tokens;"
        f" simulator {served['prompt_tokens_total']}+{served['completion_tokens_total']}"
    )
    assert ledger["prompt"] == pytest.approx(served["prompt_tokens_total"], rel=0.01)
    assert ledger["completion"] == pytest.approx(served["completion_tokens_total"], rel=0.01)
    # The failed request paid for its invalid replies too; every request carries its total.
    assert all(row["cost_usd"] > 0 for row in per_request)
    report = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.persister",
        "costs",
        "1",
        env={**os.environ, "DATABASE_URL": stack.database_url, "NATS_URL": stack.nats_url},
        stdout=asyncio.subprocess.PIPE,
    )
    printed = (await asyncio.wait_for(report.communicate(), 60))[0].decode()
    assert report.returncode == 0
    assert "planner" in printed
    assert "profiler" in printed
    assert "total $" in printed


UUID_IN_TEXT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def scrape(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a /metrics page: (name, labels) -> value."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    wanted = set(labels.items())
    return sum(value for (sample, got), value in samples.items() if sample == name and wanted <= got)


def test_each_service_exports_its_stage_metrics_with_bounded_labels(stack: Stack) -> None:
    # Runs after the plans above went through: each stage that ran shows non-zero figures.
    gateway = scrape(stack.gateway_url)
    planner, profiler, persister = (scrape(stack.health_urls[name]) for name in ("planner", "profiler", "persister"))

    assert total(gateway, "workout_plans_accepted_total") > 0
    assert total(gateway, "workout_http_requests_total", route="/functions/v1/trigger-workout-plan", status="202") > 0
    assert total(gateway, "workout_http_request_duration_seconds_count", route="/v1/requests/{request_id}") > 0
    assert total(gateway, "workout_plans_cancelled_total") > 0
    assert total(gateway, "workout_db_pool_connections", state="max") > 0
    assert total(planner, "workout_llm_calls_total", stage="planner", outcome="ok") > 0
    assert total(planner, "workout_llm_tokens_total", stage="planner", kind="completion") > 0
    assert total(planner, "workout_llm_cost_usd_total", stage="planner") > 0
    assert total(planner, "workout_messages_handled_total", consumer="planner", outcome="acked") > 0
    assert total(planner, "workout_stage_duration_seconds_count", stage="generating") > 0
    assert total(profiler, "workout_llm_calls_total", stage="profiler", outcome="ok") > 0
    assert total(profiler, "workout_profile_cache_total", result="miss") > 0
    assert total(persister, "workout_plans_completed_total") > 0
    assert total(persister, "workout_plans_failed_total", reason="invalid_llm_reply") > 0
    assert total(persister, "workout_plan_duration_seconds_count") > 0
    assert total(persister, "workout_stage_duration_seconds_count", stage="profiling") > 0
    assert total(persister, "workout_messages_handled_total", consumer="persister-plans", outcome="acked") > 0
    assert total(persister, "workout_db_pool_connections", state="max") > 0
    assert total(planner, "workout_events_published_total", subject="plan.generated", outcome="ok") > 0
    assert total(gateway, "workout_events_published_total", subject="plan.requested", outcome="ok") > 0
    for samples in (gateway, planner, profiler, persister):
        for _, labels in samples:
            for _, value in labels:
                assert not UUID_IN_TEXT.search(value), f"an id in a label: {value}"
