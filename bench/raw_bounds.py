"""The raw bound for the pipeline: what nats-py and asyncpg alone do with a plan's messages and rows.

A plan over a warm catalogue, as the services move it in parallel generation (``PlanTraffic``):
``plan.requested``, ``plan.generated`` (carrying the ledger records of its nine calls, the
skeleton and eight weeks) and ``plan.persisted`` go through JetStream, plus the progress notices
the services publish (generating, each week done, generated, completed) that nobody consumes in
the run; no profile messages, since the catalogue has every exercise. Everything but the notices and
``plan.persisted`` is consumed and acknowledged once. The persister COPYs the plan's entry rows.
``PlanTraffic.profiled`` holds the plan's profiles, for filling a catalogue beforehand.

Measured here, on the same NATS and Postgres as the pipeline run, with no service logic:
JetStream publishes of those exact payloads (acknowledged, 512 in flight at once), pull
consume + ack of the consumed ones (batches of 256), and one transaction per plan COPYing its
rows (8 connections). The bound is the three costs added up per plan, since on this box they
share the same two cores: ``1 / (publish + consume + copy seconds per plan)``.
"""

import asyncio
import datetime
import random
import time
import uuid
from dataclasses import dataclass
from typing import Any

import asyncpg
import nats
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig

from contracts.events import (
    ExerciseProfiled,
    LlmCallRecorded,
    LlmUsage,
    PlanGenerated,
    PlanPersisted,
    PlanRequested,
    TrustedPlanGenerated,
)
from contracts.exercise_keys import distinct_by_key, exercise_refs
from contracts.plan import PLAN_WEEKS
from contracts.progress import PlanProgress
from llm_simulator.intent import read_intent
from llm_simulator.plans import write_plan
from llm_simulator.profiles import write_profile
from service_runtime.ids import uuid7
from services.persister.entry_rows import ENTRY_COLUMNS, CatalogueRow, entry_records

__all__ = ["PlanTraffic", "entry_rows", "measure_raw_bounds", "plan_traffic"]

PROFILE = "I want to build muscle, 3x per week, I have a full gym"
_STREAM = "BENCH_RAW"
_PUBLISH_WINDOW = 512
_FETCH_BATCH = 256
_COPY_CONNECTIONS = 8


@dataclass(frozen=True)
class PlanTraffic:
    """One plan's JetStream messages (subject, payload) and whether a service consumes each."""

    consumed: tuple[tuple[str, bytes], ...]
    published_only: tuple[tuple[str, bytes], ...]
    generated: PlanGenerated
    calls: tuple[LlmCallRecorded, ...]
    profiled: tuple[ExerciseProfiled, ...]

    @property
    def messages(self) -> int:
        return len(self.consumed) + len(self.published_only)

    @property
    def bytes(self) -> int:
        return sum(len(payload) for _, payload in (*self.consumed, *self.published_only))


def plan_traffic(seed: int = 1, request_id: uuid.UUID | None = None, user_id: uuid.UUID | None = None) -> PlanTraffic:
    """A plan as the simulator writes it for ``PROFILE``, and every message the services send about
    it when the catalogue already has its exercises."""
    rng = random.Random(seed)
    request_id = request_id or uuid7()  # as the gateway makes them
    user_id = user_id or uuid.uuid4()
    plan = write_plan(read_intent(PROFILE, ""), rng)
    refs = exercise_refs(plan)
    usage = LlmUsage(model="gpt-4o-mini", prompt_tokens=600, completion_tokens=len(plan.model_dump_json()) // 4)
    requested = PlanRequested(request_id=request_id, user_id=user_id, user_profile=PROFILE)
    calls = [
        LlmCallRecorded(
            request_id=request_id,
            call_id=uuid7(),  # as the planner's meter makes them
            stage="planner",
            model=usage.model,
            outcome="ok",
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens // 9,
            seconds=0.05,
            cost_usd=0.0001,
        )
        for _ in range(1 + PLAN_WEEKS)
    ]
    # The planner sends its calls' ledger records inside the plan.
    generated = PlanGenerated(
        request_id=request_id, user_id=user_id, plan=plan, exercises=refs, usage=usage, calls=tuple(calls)
    )
    profiled = tuple(
        ExerciseProfiled(request_id=request_id, exercise=ref, profile=write_profile(ref.name, rng), source="cache")
        for ref in distinct_by_key(refs)
    )
    persisted = PlanPersisted(request_id=request_id, user_id=user_id, plan_id=uuid.uuid4())
    notices = [
        PlanProgress(request_id=request_id, status="processing", stage="generating"),
        *(
            PlanProgress(request_id=request_id, status="processing", stage="generating", weeks_done=done)
            for done in range(1, PLAN_WEEKS + 1)
        ),
        PlanProgress(request_id=request_id, status="processing", stage="generated", exercises_total=len(profiled)),
        PlanProgress(request_id=request_id, status="completed", stage="completed", plan_id=persisted.plan_id),
    ]
    consumed = [requested, generated]
    return PlanTraffic(
        consumed=tuple((event.subject, event.model_dump_json().encode()) for event in consumed),
        published_only=(
            (persisted.subject, persisted.model_dump_json().encode()),
            *((f"progress.{request_id}", notice.model_dump_json().encode()) for notice in notices),
        ),
        generated=generated,
        calls=tuple(calls),
        profiled=profiled,
    )


def entry_rows(generated: PlanGenerated, plan_id: uuid.UUID) -> list[tuple[Any, ...]]:
    """The plan's ``workout_entries`` rows, as the persister builds them (catalogue ids made up)."""
    catalogue = {ref.key: CatalogueRow(uuid.uuid4(), "barbell", True) for ref in generated.exercises}
    return entry_records(TrustedPlanGenerated.of(generated), plan_id, catalogue, datetime.date.today())


async def _publish_and_consume(nats_url: str, traffic: PlanTraffic, plans: int) -> dict[str, float]:
    nc = await nats.connect(nats_url, max_reconnect_attempts=-1)
    js = nc.jetstream()
    try:
        await js.add_stream(
            StreamConfig(name=_STREAM, subjects=["bench.raw.>"], storage=StorageType.FILE, duplicate_window=120)
        )
        # The same subjects' shapes, on their own stream: "c" messages are consumed, "p" only published.
        one_plan = [(f"bench.raw.c.{i}", payload) for i, (_, payload) in enumerate(traffic.consumed)] + [
            (f"bench.raw.p.{i}", payload) for i, (_, payload) in enumerate(traffic.published_only)
        ]
        messages = one_plan * plans
        started = time.perf_counter()
        for batch in range(0, len(messages), _PUBLISH_WINDOW):
            await asyncio.gather(
                *(
                    js.publish(subject, payload, headers={"Nats-Msg-Id": uuid.uuid4().hex})
                    for subject, payload in messages[batch : batch + _PUBLISH_WINDOW]
                )
            )
        publish_seconds = time.perf_counter() - started

        await js.add_consumer(
            _STREAM,
            ConsumerConfig(
                durable_name="bench-raw", filter_subject="bench.raw.c.>", ack_policy=AckPolicy.EXPLICIT, ack_wait=60
            ),
        )
        sub = await js.pull_subscribe_bind(durable="bench-raw", stream=_STREAM)
        to_consume = len(traffic.consumed) * plans
        consumed = 0
        started = time.perf_counter()
        while consumed < to_consume:
            fetched = await sub.fetch(min(_FETCH_BATCH, to_consume - consumed), timeout=10)
            for msg in fetched:
                await msg.ack()
            consumed += len(fetched)
        await nc.flush()
        consume_seconds = time.perf_counter() - started
        await js.delete_stream(_STREAM)
    finally:
        await nc.close()
    return {
        "publish_msgs_per_s": len(messages) / publish_seconds,
        "publish_mb_per_s": traffic.bytes * plans / publish_seconds / 1e6,
        "publish_seconds_per_plan": publish_seconds / plans,
        "consume_ack_msgs_per_s": to_consume / consume_seconds,
        "consume_seconds_per_plan": consume_seconds / plans,
    }


async def _copy_rows(database_url: str, traffic: PlanTraffic, plans: int) -> dict[str, float]:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "DROP TABLE IF EXISTS bench_raw_entries;"
            " CREATE TABLE bench_raw_entries (LIKE workout_entries INCLUDING DEFAULTS INCLUDING IDENTITY"
            " INCLUDING INDEXES)"
        )
        # The real table's triggers fill the original app's columns from ours; the copy has no
        # triggers, so those columns may stay empty here (the bound is the COPY of our columns).
        filled_by_triggers = await conn.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'bench_raw_entries'"
            " AND is_nullable = 'NO' AND column_default IS NULL AND is_identity = 'NO'"
            " AND NOT (column_name = ANY($1::text[]))",
            list(ENTRY_COLUMNS),
        )
        for row in filled_by_triggers:
            await conn.execute(f'ALTER TABLE bench_raw_entries ALTER COLUMN "{row["column_name"]}" DROP NOT NULL')
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(database_url, min_size=_COPY_CONNECTIONS, max_size=_COPY_CONNECTIONS)
    assert pool is not None
    rows_per_plan = len(entry_rows(traffic.generated, uuid7()))
    plan_rows = [entry_rows(traffic.generated, uuid7()) for _ in range(plans)]
    queue: asyncio.Queue[list[tuple[Any, ...]]] = asyncio.Queue()
    for rows in plan_rows:
        queue.put_nowait(rows)

    async def worker() -> None:
        async with pool.acquire() as conn:
            while not queue.empty():
                rows = queue.get_nowait()
                async with conn.transaction():
                    await conn.copy_records_to_table("bench_raw_entries", records=rows, columns=ENTRY_COLUMNS)

    try:
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(_COPY_CONNECTIONS)))
        copy_seconds = time.perf_counter() - started
        await pool.execute("DROP TABLE bench_raw_entries")
    finally:
        await pool.close()
    return {
        "rows_per_plan": rows_per_plan,
        "copy_plans_per_s": plans / copy_seconds,
        "copy_rows_per_s": plans * rows_per_plan / copy_seconds,
        "copy_seconds_per_plan": copy_seconds / plans,
    }


async def measure_raw_bounds(nats_url: str, database_url: str, *, plans: int = 500) -> dict[str, Any]:
    traffic = plan_traffic()
    figures: dict[str, Any] = {
        "plans": plans,
        "messages_per_plan": traffic.messages,
        "consumed_per_plan": len(traffic.consumed),
        "bytes_per_plan": traffic.bytes,
        "plan_generated_bytes": len(traffic.consumed[1][1]),
    }
    figures.update(await _publish_and_consume(nats_url, traffic, plans))
    figures.update(await _copy_rows(database_url, traffic, plans))
    per_plan = figures["publish_seconds_per_plan"] + figures["consume_seconds_per_plan"]
    per_plan += figures["copy_seconds_per_plan"]
    figures["raw_bound_plans_per_s"] = 1 / per_plan
    # The optimistic reading: each part on its own, as if the others cost nothing.
    figures["raw_best_single_part_plans_per_s"] = min(
        1 / figures["publish_seconds_per_plan"],
        1 / figures["consume_seconds_per_plan"],
        1 / figures["copy_seconds_per_plan"],
    )
    return {key: round(value, 6) if isinstance(value, float) else value for key, value in figures.items()}
