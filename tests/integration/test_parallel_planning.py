"""Parallel generation against the real simulator (over HTTP) and a real JetStream key-value bucket:
a skeleton, then eight weeks at once; broken weeks regenerated or the request failed; a crash re-buys
only the unfinished parts."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import openai
import pytest
from nats.aio.client import Client

from contracts.exercise_keys import exercise_key
from contracts.plan import PLAN_WEEKS, ExerciseProfile
from contracts.progress import PlanProgress
from contracts.streams import EXERCISE_PROFILES
from llm_simulator import SimulatorConfig
from service_runtime.buckets import Bucket
from service_runtime.llm.chat import ChatCompletions
from service_runtime.llm.responses import BackgroundResponses
from service_runtime.outcomes import GiveUp, RetryLater
from services.planner.planning import INSTRUCTIONS, PlanPrompt
from services.planner.progressive import ProgressiveWeeks
from services.planner.quality import plan_problems
from services.planner.skeleton_weeks import SkeletonThenWeeks
from services.planner.state import CatalogueNames, FinishedParts, PlannerState, RecordedResponses
from tests.fakes import sample_profile
from tests.simulator_server import reset_simulator, serving_simulator, simulator_stats

pytestmark = pytest.mark.integration

PROFILE = "I want to build muscle, 4x per week, I have a full gym"
PROMPT = PlanPrompt([INSTRUCTIONS], PROFILE)
FAST: dict[str, Any] = {"tokens_per_second": 0, "first_token_delay_seconds": 0.01, "seed": 11, "p_rate_limit": 0}


class Notices:
    def __init__(self) -> None:
        self.seen: list[PlanProgress] = []

    async def announce(self, progress: PlanProgress) -> None:
        self.seen.append(progress)


@pytest.fixture(scope="module")
def parallel_simulator_url() -> Iterator[str]:
    with serving_simulator(SimulatorConfig(**FAST)) as url:
        yield url


@pytest.fixture
async def admin(parallel_simulator_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=parallel_simulator_url, timeout=10) as client:
        await reset_simulator(client, FAST)
        yield client


@pytest.fixture
async def llm(parallel_simulator_url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=f"{parallel_simulator_url}/v1", api_key="sim", max_retries=0)
    yield client
    await client.close()


async def settled_stats(admin: httpx.AsyncClient) -> dict[str, Any]:
    """The simulator's stats once the streams a "crash" cut have ended there: a stream can still
    finish (and count as delivered) after its client went away, until the server notices."""
    before = await simulator_stats(admin)
    while True:
        await asyncio.sleep(0.2)
        now = await simulator_stats(admin)
        if now == before:
            return now
        before = now


async def planner_state(nc: Client) -> PlannerState:
    return await PlannerState.open(nc.jetstream())


async def part_store(nc: Client) -> FinishedParts:
    return (await planner_state(nc)).parts


async def response_ids(nc: Client) -> RecordedResponses:
    return (await planner_state(nc)).responses


def writer_for(
    llm: openai.AsyncOpenAI,
    parts: FinishedParts,
    notices: Notices,
    *,
    known: CatalogueNames | None = None,
    background: RecordedResponses | None = None,
) -> SkeletonThenWeeks:
    """The strategy over streamed chat, or over background responses recorded in ``background``."""
    calls = (
        ChatCompletions(llm, model="gpt-4o-mini", deadline_seconds=30, stream=True)
        if background is None
        else BackgroundResponses(llm, background, model="gpt-4o-mini", deadline_seconds=30, poll_interval_seconds=0.05)
    )
    return SkeletonThenWeeks(calls, parts, notices, tries=2, max_concurrent_calls=16, known=known)


async def test_a_skeleton_and_eight_weeks_make_one_coherent_plan(
    nc: Client, llm: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    notices = Notices()
    writer = writer_for(llm, await part_store(nc), notices)

    draft = await writer.write(uuid.uuid4(), PROMPT)

    assert [w.week for w in draft.plan.weeks] == list(range(1, PLAN_WEEKS + 1))
    assert {len(w.days) for w in draft.plan.weeks} == {4}
    assert plan_problems(draft.plan, profile=PROFILE) == []
    stats = await simulator_stats(admin)
    assert stats["completions_by_schema"] == {"PlanSkeleton": 1, "TrainingWeek": PLAN_WEEKS}
    assert draft.usage.calls == 1 + PLAN_WEEKS
    assert draft.usage.completion_tokens == stats["completion_tokens_total"]
    assert sorted(n.weeks_done or 0 for n in notices.seen) == list(range(1, PLAN_WEEKS + 1))


@pytest.mark.parametrize("background", [False, True], ids=["chat", "background"])
async def test_progressive_generation_makes_the_same_coherent_plan_from_an_outline_and_day_parts(
    nc: Client, llm: openai.AsyncOpenAI, admin: httpx.AsyncClient, background: bool
) -> None:
    notices = Notices()
    calls = (
        BackgroundResponses(
            llm, await response_ids(nc), model="gpt-4o-mini", deadline_seconds=30, poll_interval_seconds=0.05
        )
        if background
        else ChatCompletions(llm, model="gpt-4o-mini", deadline_seconds=30, stream=True)
    )
    writer = ProgressiveWeeks(
        calls,
        await part_store(nc),
        notices,
        tries=2,
        max_concurrent_calls=64,
        exercises_per_call=6,
        first_week_exercises_per_call=2,
    )

    draft = await writer.write(uuid.uuid4(), PROMPT)

    assert [w.week for w in draft.plan.weeks] == list(range(1, PLAN_WEEKS + 1))
    assert {len(w.days) for w in draft.plan.weeks} == {4}
    assert plan_problems(draft.plan, profile=PROFILE) == []
    stats = await simulator_stats(admin)
    by_schema = stats["completions_by_schema"]
    assert (by_schema["PlanOutline"], by_schema["PlanOverview"]) == (1, 1)
    # Four days a week: week 1's days in parts of at most two exercises, the other weeks' whole.
    assert by_schema["TrainingDay"] > 4 * PLAN_WEEKS
    assert draft.usage.calls == sum(by_schema.values())
    assert draft.usage.completion_tokens == stats["completion_tokens_total"]
    assert [n.weeks_done for n in notices.seen] == list(range(1, PLAN_WEEKS + 1))


async def test_weeks_that_stay_broken_end_the_request_with_plan_quality(
    nc: Client, llm: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    writer = writer_for(llm, await part_store(nc), Notices())

    with pytest.raises(GiveUp) as failure:
        await writer.write(uuid.uuid4(), PlanPrompt([INSTRUCTIONS], f"{PROFILE} [[sim:fault=broken]]"))

    assert failure.value.reason == "plan_quality"
    stats = await simulator_stats(admin)
    # The skeleton is fine (the fault spoils plans and weeks only); every week is bought at most twice.
    assert stats["faults_by_kind"]["broken"] <= 1 + 2 * PLAN_WEEKS


async def test_a_redelivery_after_a_crash_buys_only_the_unfinished_parts(
    nc: Client, llm: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    parts = await part_store(nc)
    request_id = uuid.uuid4()
    # Paced so the weeks are still being written when the "crash" comes.
    await reset_simulator(admin, {**FAST, "tokens_per_second": 1500})
    crashed = asyncio.create_task(writer_for(llm, parts, Notices()).write(request_id, PROMPT))
    # Crash once the skeleton and the first week are kept (the other weeks are still streaming).
    while not any([await parts.get(request_id, f"week{n}") for n in range(1, PLAN_WEEKS + 1)]):
        await asyncio.sleep(0.005)
    crashed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await crashed
    first = await settled_stats(admin)
    kept = [n for n in range(1, PLAN_WEEKS + 1) if await parts.get(request_id, f"week{n}") is not None]

    draft = await writer_for(llm, parts, Notices()).write(request_id, PROMPT)

    after = await simulator_stats(admin)
    bought_again = after["completions_by_schema"].get("TrainingWeek", 0) - first["completions_by_schema"].get(
        "TrainingWeek", 0
    )
    assert 0 < len(kept) < PLAN_WEEKS
    assert after["completions_by_schema"]["PlanSkeleton"] == 1  # the skeleton was not bought twice
    assert bought_again == PLAN_WEEKS - len(kept)
    assert plan_problems(draft.plan, profile=PROFILE) == []


async def test_the_skeleton_call_is_steered_toward_exercises_the_catalogue_already_describes(
    nc: Client, parallel_simulator_url: str, admin: httpx.AsyncClient
) -> None:
    js = nc.jetstream()
    profiles = await Bucket.open(js, EXERCISE_PROFILES, ExerciseProfile)
    for name in ("Barbell Back Squat", "Goblet Squat"):
        await profiles.put(exercise_key(name), sample_profile(name))
    known = CatalogueNames(profiles, limit=500, refresh_seconds=300)
    sent: list[dict[str, Any]] = []

    async def record(request: httpx.Request) -> None:
        sent.append(json.loads(request.content))

    http = httpx.AsyncClient(event_hooks={"request": [record]})
    llm = openai.AsyncOpenAI(base_url=f"{parallel_simulator_url}/v1", api_key="sim", max_retries=0, http_client=http)
    writer = writer_for(llm, await part_store(nc), Notices(), known=known)
    try:
        await writer.write(uuid.uuid4(), PROMPT)
    finally:
        await llm.close()

    skeleton_calls = [body for body in sent if body["response_format"]["json_schema"]["name"] == "PlanSkeleton"]
    week_calls = [body for body in sent if body["response_format"]["json_schema"]["name"] == "TrainingWeek"]
    (skeleton_call,) = skeleton_calls
    system = "\n".join(m["content"] for m in skeleton_call["messages"] if m["role"] == "system")
    assert "Barbell Back Squat" in system
    assert "Goblet Squat" in system
    assert week_calls
    assert all("already describes" not in m["content"] for body in week_calls for m in body["messages"])


async def test_rate_limited_weeks_are_retried_by_redelivery_and_no_week_is_bought_twice(
    nc: Client, llm: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    await reset_simulator(admin, {**FAST, "p_rate_limit": 0.35, "retry_after_seconds": 0})
    parts = await part_store(nc)
    request_id = uuid.uuid4()
    deliveries = 0
    reasons: set[str] = set()
    while True:  # what the consumer does: deliver again after a RetryLater
        deliveries += 1
        assert deliveries <= 20, "the plan never got written"
        try:
            draft = await writer_for(llm, parts, Notices()).write(request_id, PROMPT)
        except RetryLater as exc:
            reasons.add(exc.reason)
            continue
        break

    stats = await simulator_stats(admin)
    assert stats["faults_by_kind"].get("rate_limit", 0) > 0, "no 429 was drawn: the test proved nothing"
    assert reasons <= {"llm_rate_limited"}
    # Each 429 was tried again in place or by a redelivery, and every delivery let the other weeks
    # finish and kept them: each part was bought exactly once.
    assert stats["completions_by_schema"] == {"PlanSkeleton": 1, "TrainingWeek": PLAN_WEEKS}
    assert plan_problems(draft.plan, profile=PROFILE) == []


def background_writer_for(llm: openai.AsyncOpenAI, parts: FinishedParts, ids: RecordedResponses) -> SkeletonThenWeeks:
    return writer_for(llm, parts, Notices(), background=ids)


async def test_in_background_mode_every_part_is_one_background_response(
    nc: Client, llm: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    writer = background_writer_for(llm, await part_store(nc), await response_ids(nc))

    draft = await writer.write(uuid.uuid4(), PROMPT)

    assert plan_problems(draft.plan, profile=PROFILE) == []
    stats = await simulator_stats(admin)
    assert stats["responses_created_total"] == 1 + PLAN_WEEKS
    assert stats["completions_by_schema"] == {"PlanSkeleton": 1, "TrainingWeek": PLAN_WEEKS}
    assert draft.usage.calls == 1 + PLAN_WEEKS
    assert draft.usage.completion_tokens == stats["completion_tokens_total"]


async def test_in_background_mode_a_crash_mid_weeks_buys_nothing_twice(
    nc: Client, llm: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    parts, ids = await part_store(nc), await response_ids(nc)
    request_id = uuid.uuid4()
    await reset_simulator(admin, {**FAST, "tokens_per_second": 1500})
    crashed = asyncio.create_task(background_writer_for(llm, parts, ids).write(request_id, PROMPT))
    # Crash while the weeks' responses are being written: all eight recorded, none kept yet.
    while not all([await ids.get(f"{request_id}.week{n}") for n in range(1, PLAN_WEEKS + 1)]):
        await asyncio.sleep(0.005)
    crashed.cancel()
    with pytest.raises(asyncio.CancelledError):
        await crashed
    kept = [n for n in range(1, PLAN_WEEKS + 1) if await parts.get(request_id, f"week{n}") is not None]

    draft = await background_writer_for(llm, parts, ids).write(request_id, PROMPT)

    stats = await simulator_stats(admin)
    assert len(kept) < PLAN_WEEKS, "every week was finished before the crash: the test proved nothing"
    # The redelivery re-attached to the weeks in flight: each part was bought once.
    assert stats["responses_created_total"] == 1 + PLAN_WEEKS
    assert stats["completions_by_schema"] == {"PlanSkeleton": 1, "TrainingWeek": PLAN_WEEKS}
    assert plan_problems(draft.plan, profile=PROFILE) == []


async def test_in_background_mode_a_week_failing_its_checks_is_written_anew_not_re_attached(
    nc: Client, llm: openai.AsyncOpenAI, admin: httpx.AsyncClient
) -> None:
    writer = background_writer_for(llm, await part_store(nc), await response_ids(nc))

    with pytest.raises(GiveUp) as failure:
        await writer.write(uuid.uuid4(), PlanPrompt([INSTRUCTIONS], f"{PROFILE} [[sim:fault=broken]]"))

    assert failure.value.reason == "plan_quality"
    stats = await simulator_stats(admin)
    # The skeleton once, then each week twice: the second attempt is a new response, not the broken one again.
    assert stats["responses_created_total"] == 1 + 2 * PLAN_WEEKS


class FirstTryRefused(httpx.AsyncBaseTransport):
    """Answers the first try of every distinct call with OpenAI's 429 (Retry-After 0) and passes
    every later one to the simulator: each part is refused exactly once, whatever the interleaving."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._seen: set[bytes] = set()
        self.refused = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        if body not in self._seen:
            self._seen.add(body)
            self.refused += 1
            error = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
            return httpx.Response(429, json=error, headers={"retry-after-ms": "0"})
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


async def test_a_part_refused_before_any_generation_is_tried_again_in_place(
    nc: Client, parallel_simulator_url: str, admin: httpx.AsyncClient
) -> None:
    transport = FirstTryRefused()
    http = httpx.AsyncClient(transport=transport)
    llm = openai.AsyncOpenAI(base_url=f"{parallel_simulator_url}/v1", api_key="sim", max_retries=0, http_client=http)
    try:
        # One delivery: no RetryLater reaches the consumer although every part was refused once.
        draft = await writer_for(llm, await part_store(nc), Notices()).write(uuid.uuid4(), PROMPT)
    finally:
        await llm.close()

    assert transport.refused == 1 + PLAN_WEEKS
    stats = await simulator_stats(admin)
    assert stats["completions_by_schema"] == {"PlanSkeleton": 1, "TrainingWeek": PLAN_WEEKS}
    assert plan_problems(draft.plan, profile=PROFILE) == []


@pytest.mark.parametrize("background", [False, True], ids=["chat", "background"])
async def test_a_skeleton_that_stays_invalid_gets_one_more_try_than_a_week_then_fails(
    nc: Client, llm: openai.AsyncOpenAI, admin: httpx.AsyncClient, background: bool
) -> None:
    parts = await part_store(nc)
    writer = (
        background_writer_for(llm, parts, await response_ids(nc)) if background else writer_for(llm, parts, Notices())
    )

    with pytest.raises(GiveUp) as failure:
        await writer.write(uuid.uuid4(), PlanPrompt([INSTRUCTIONS], f"{PROFILE} [[sim:fault=truncate]]"))

    assert failure.value.reason == "invalid_llm_reply"
    stats = await simulator_stats(admin)
    assert stats["faults_by_kind"] == {"truncate": 3}  # attempts=2, plus one for the skeleton
    assert stats["completions_total"] == 0
