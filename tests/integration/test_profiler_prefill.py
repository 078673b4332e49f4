"""The catalogue pre-fill over a real NATS and the simulator served as its own process: names in,
one batch bought, profiles in the cache bucket, ``exercise.profiled`` and ledger records (batch
tier) on the bus, and a rerun buys nothing; the persister keeps a profile for no request in the
catalogue."""

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg
import httpx
import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from contracts import subjects
from contracts.events import ExerciseProfiled, ExerciseRef, LlmCallRecorded
from contracts.exercise_keys import exercise_key
from llm_simulator import SimulatorConfig
from service_runtime.llm.batch import batch_call_id
from services.persister.postgres import PostgresPlanStore
from services.profiler.app import prefill_catalogue
from services.profiler.cache import KeyValueProfileCache
from services.profiler.settings import ProfilerSettings
from tests.fakes import sample_profile
from tests.simulator_server import serving_simulator

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def simulator_url() -> Iterator[str]:
    config = SimulatorConfig(tokens_per_second=0, first_token_delay_seconds=0, batch_seconds=0.4, seed=7)
    with serving_simulator(config) as url:
        yield url


async def test_a_prefill_buys_one_batch_caches_and_publishes_each_profile_and_a_rerun_buys_nothing(
    nc: Client, nats_url: str, simulator_url: str
) -> None:
    run = uuid.uuid4().hex[:6]  # the bucket outlives a test: names of their own
    names = [f"Goblet Squat {run}", f"Zercher Carry {run}", f"Landmine Press {run}"]
    broken = f"Sissy Squat {run} [[sim:fault=malformed]]"
    events: dict[str, list[bytes]] = {subjects.EXERCISE_PROFILED: [], subjects.LLM_CALL_RECORDED: []}

    async def keep(msg: Msg) -> None:
        events[msg.subject].append(msg.data)

    for subject in events:
        await nc.subscribe(subject, cb=keep)
    settings = ProfilerSettings(
        NATS_URL=nats_url,
        OPENAI_BASE_URL=f"{simulator_url}/v1",
        OPENAI_API_KEY="sim",
        PROFILER_BATCH_POLL_SECONDS=0.1,
    )

    report = await prefill_catalogue([*names, names[0].upper(), broken], settings)
    again = await prefill_catalogue(names, settings)
    await nc.flush()
    await asyncio.sleep(0.2)  # the last events reach the subscription
    async with httpx.AsyncClient(base_url=simulator_url) as admin:
        stats = (await admin.get("/_sim/stats")).json()

    assert (report.asked, sorted(report.profiled), report.cached) == (4, sorted(names), [])
    assert list(report.unusable) == [broken] and len(report.batch_ids) == 1
    cache = await KeyValueProfileCache.open(nc.jetstream(), claim_ttl_seconds=30)
    for name in names:
        profile = await cache.get(exercise_key(name))
        assert profile is not None and profile.name == name
    assert await cache.get(exercise_key(broken)) is None
    profiled = [ExerciseProfiled.model_validate_json(data) for data in events[subjects.EXERCISE_PROFILED]]
    assert sorted(e.exercise.name for e in profiled if e.request_id == report.request_id) == sorted(names)
    assert all(e.source == "llm" and e.usage is not None for e in profiled if e.request_id == report.request_id)
    records = [LlmCallRecorded.model_validate_json(data) for data in events[subjects.LLM_CALL_RECORDED]]
    ours = [r for r in records if r.request_id == report.request_id]
    assert len(ours) == 4 and {(r.stage, r.service_tier) for r in ours} == {("profiler", "batch")}
    assert sorted(r.outcome for r in ours) == ["invalid_reply", "ok", "ok", "ok"]
    assert {r.call_id for r in ours} == {batch_call_id(report.batch_ids[0], f"exercise-{i}") for i in range(4)}
    assert all(r.cost_usd > 0 for r in ours)
    # The rerun found every profile cached: no batch, no event, no record.
    assert (again.cached, again.profiled, again.request_id, again.batch_ids) == (names, [], None, [])
    assert stats["batches_created_total"] == 1 and stats["batch_requests_total"] == 4


async def test_the_persister_keeps_a_profile_for_no_request_in_the_catalogue(pool: asyncpg.Pool) -> None:
    name = f"Zercher Carry {uuid.uuid4().hex[:6]}"
    ref = ExerciseRef(key=exercise_key(name), name=name)
    store = PostgresPlanStore(pool)

    first = ExerciseProfiled(request_id=uuid.uuid4(), exercise=ref, profile=sample_profile(name), source="llm")
    later = first.model_copy(update={"request_id": uuid.uuid4(), "profile": sample_profile("Another")})
    assert await store.store_profile(first) is None
    assert await store.store_profile(later) is None

    stored = await pool.fetchval("SELECT profile->>'name' FROM exercises WHERE key = $1", ref.key)
    assert stored == name
