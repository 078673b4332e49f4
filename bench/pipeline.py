"""Sections 2 and 6: plans per second end to end with a zero-latency LLM, its raw bound, where the
time goes, and the CPU (so the compute cost) each plan takes across the services.

One stack (``bench.full_stack``) with the simulator answering at once (``SIM_TOKENS_PER_SECOND=0``,
``SIM_FIRST_TOKEN_DELAY_SECONDS=0``) and the planner streaming (the portable default mode):

1. the raw bound (``bench.raw_bounds``) on the same NATS and Postgres, while the services idle;
2. a warm-up batch, which also fills the exercise catalogue as production's would be;
3. the measured batch: ``plans`` requests sent open-loop through the gateway at ``rate`` per
   second, as many users; plans/s = plans / (last ``completed_at`` - first ``created_at``), read
   from Postgres, with CPU seconds of every process (trees, from /proc) over the batch;
4. a profiled batch, with py-spy sampling each service (kept apart from 3: sampling costs CPU).
"""

import asyncio
import json
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from bench.full_stack import RunningStack, running_stack
from bench.gateway_latency import BODY, TRIGGER, load
from bench.loadgen import LoadSpec, percentiles
from bench.procfs import sample_tree
from bench.profiles import py_spy, summarise
from bench.raw_bounds import measure_raw_bounds
from bench.workdirs import workdir_or_scratch
from contracts import roster

__all__ = ["PIPELINE_ENV", "measure_pipeline"]

PIPELINE_ENV = {
    "GATEWAY_MAX_ACTIVE_REQUESTS_PER_USER": "1000000",
    "GATEWAY_MAX_REQUESTS_PER_DAY_PER_USER": "1000000",
    "SIM_TOKENS_PER_SECOND": "0",
    "SIM_FIRST_TOKEN_DELAY_SECONDS": "0",
    "PLANNER_LLM_MODE": "chat_stream",
}


async def _wait_terminal(database_url: str, since: float, expected: int, within_seconds: float) -> dict[str, Any]:
    """Wait until ``expected`` requests created after ``since`` (epoch) are terminal; read their timings."""
    conn = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + within_seconds
        while True:
            row = await conn.fetchrow(
                "SELECT count(*) FILTER (WHERE status = 'completed') AS completed,"
                " count(*) FILTER (WHERE status IN ('failed', 'cancelled')) AS failed, count(*) AS total"
                " FROM workout_plan_requests WHERE created_at >= to_timestamp($1)",
                since,
            )
            assert row is not None
            if row["completed"] + row["failed"] >= expected or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        timing = await conn.fetchrow(
            "SELECT extract(epoch FROM min(created_at))::float8 AS first_created,"
            " extract(epoch FROM max(completed_at))::float8 AS last_completed,"
            " array_agg(extract(epoch FROM completed_at - created_at)::float8) AS durations"
            " FROM workout_plan_requests WHERE created_at >= to_timestamp($1) AND status = 'completed'",
            since,
        )
        assert timing is not None
    finally:
        await conn.close()
    durations = [d for d in (timing["durations"] or []) if d is not None]
    span = (timing["last_completed"] or 0) - (timing["first_created"] or 0)
    return {
        "accepted": row["total"],
        "completed": row["completed"],
        "failed": row["failed"],
        "span_seconds": round(span, 2),
        "plans_per_s": round(row["completed"] / span, 1) if span > 0 else 0.0,
        "time_to_completed_ms": percentiles(durations),
    }


def _batch(stack: RunningStack, workdir: Path, tokens: tuple[str, ...], plans: int, rate: float) -> dict[str, Any]:
    host, port = stack.services.gateway_url.removeprefix("http://").split(":")
    since = time.time() - 0.5
    sent = load(LoadSpec(host, int(port), "POST", TRIGGER, rate, plans / rate, tokens, BODY), workdir)
    result = asyncio.run(_wait_terminal(stack.postgres.url, since, sent["ok"], within_seconds=300))
    result["load"] = {key: sent[key] for key in ("sent", "ok", "statuses", "latency_ms", "throughput_ok_per_s")}
    return result


def measure_pipeline(
    *,
    plans: int = 1500,
    rate: float = 150.0,
    warmup_plans: int = 50,
    profiled_plans: int = 600,
    raw_plans: int = 500,
    users: int = 1000,
    workdir: Path | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    with workdir_or_scratch(workdir, "bench-pipeline-") as work:
        with running_stack(work, env={**PIPELINE_ENV, **(env or {})}) as stack:
            raw = asyncio.run(measure_raw_bounds(stack.nats.url, stack.postgres.url, plans=raw_plans))
            print(f"raw bound: {raw['raw_bound_plans_per_s']:.1f} plans/s", flush=True)
            tokens = tuple(stack.services.token(uuid.uuid4()) for _ in range(users))
            warm = _batch(stack, work, tokens, warmup_plans, 50)
            print(f"warm-up: {warm['completed']}/{warm['accepted']} completed", flush=True)

            pids = stack.pids()
            before = {name: sample_tree(pid).cpu_seconds for name, pid in pids.items()}
            started = time.monotonic()
            measured = _batch(stack, work, tokens, plans, rate)
            wall = time.monotonic() - started
            after = {name: sample_tree(pid).cpu_seconds for name, pid in pids.items()}
            cpu = {name: round(after[name] - before[name], 2) for name in pids}
            measured["wall_seconds"] = round(wall, 1)
            measured["cpu_seconds"] = cpu
            done = max(1, measured["completed"])
            measured["cpu_ms_per_plan"] = {name: round(1000 * seconds / done, 2) for name, seconds in cpu.items()}
            print(
                f"pipeline: {measured['completed']}/{measured['accepted']} in {measured['span_seconds']} s"
                f" = {measured['plans_per_s']} plans/s",
                flush=True,
            )

            spied = {name: pid for name, pid in pids.items() if name in (*roster.NAMES, "simulator")}
            with py_spy(spied, work / "profiles") as outputs:
                profiled = _batch(stack, work, tokens, profiled_plans, rate)
            profile = summarise(outputs)
            print(f"profiled batch: {profiled['plans_per_s']} plans/s under py-spy", flush=True)
            (work / "profile-summary.json").write_text(json.dumps(profile, indent=1))
        return {
            "env": PIPELINE_ENV,
            "rate": rate,
            "users": users,
            "raw": raw,
            "warmup": warm,
            "measured": measured,
            "profiled_batch": profiled,
            "profile": profile,
            "share_of_raw_bound": round(measured["plans_per_s"] / raw["raw_bound_plans_per_s"], 3),
        }
