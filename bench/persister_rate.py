"""Section 5: plans persisted per second by one persister process, through its real consumers.

NATS and a migrated Postgres (fresh) whose catalogue already has every exercise the plans use,
with its profile, as production's has after its first days. ``plans`` request rows are inserted as
``processing`` (as the gateway would have), and what the persister consumes of each plan over a
warm catalogue (``bench.raw_bounds.plan_traffic``: its ``plan.generated``, which carries its
nine calls' ledger records; the simulator's plans for five seeds) is published to JetStream first, so
that the publisher's speed is not what is measured. Then one ``python -m services.persister``
starts with its default settings and works through the backlog, as a replica does after a burst.
Rate: plans completed after it was ready, divided by the time from ready to the last
``completed_at``; CPU per plan over the same interval.
"""

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
from prometheus_client.parser import text_string_to_metric_families

from bench.full_stack import QUIET, infrastructure, started_together
from bench.procfs import sample_tree
from bench.raw_bounds import PROFILE, PlanTraffic, plan_traffic
from bench.workdirs import workdir_or_scratch
from contracts import roster
from devstack import free_port
from devstack.supervisor import Supervisor
from service_runtime.bus import ensure_streams

__all__ = ["measure_persister"]

_PUBLISH_WINDOW = 512


async def _seed_requests(database_url: str, plans: list[PlanTraffic]) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.copy_records_to_table(
            "workout_plan_requests",
            records=[(p.generated.request_id, p.generated.user_id, "processing", "generating", PROFILE) for p in plans],
            columns=("id", "user_id", "status", "stage", "user_profile"),
        )
    finally:
        await conn.close()


async def _warm_catalogue(database_url: str, plans: list[PlanTraffic]) -> None:
    """Every exercise the plans use, with its profile, in the catalogue."""
    profiles = {p.exercise.key: p for plan in plans for p in plan.profiled}
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "INSERT INTO exercises (key, name, profile, profiled_at)"
            " SELECT k, n, p::jsonb, clock_timestamp() FROM unnest($1::text[], $2::text[], $3::text[]) AS t(k, n, p)"
            " ON CONFLICT (key) DO NOTHING",
            list(profiles),
            [p.exercise.name for p in profiles.values()],
            [p.profile.model_dump_json() for p in profiles.values()],
        )
    finally:
        await conn.close()


async def _publish_all(nats_url: str, plans: list[PlanTraffic]) -> float:
    """Publish every plan's ``plan.generated`` (its calls' records inside); return seconds taken."""
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    await ensure_streams(js)
    messages = [(plan.generated.subject, plan.generated.wire, plan.generated.dedup_id) for plan in plans]
    started = time.perf_counter()
    try:
        for batch in range(0, len(messages), _PUBLISH_WINDOW):
            await asyncio.gather(
                *(
                    js.publish(subject, payload, stream="WORKOUT_EVENTS", headers={"Nats-Msg-Id": dedup})
                    for subject, payload, dedup in messages[batch : batch + _PUBLISH_WINDOW]
                )
            )
    finally:
        await nc.close()
    return time.perf_counter() - started


async def _completed(database_url: str) -> tuple[int, int, float | None]:
    """(completed, failed, epoch of the last completion)."""
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) FILTER (WHERE status = 'completed') AS completed,"
            " count(*) FILTER (WHERE status = 'failed') AS failed,"
            " extract(epoch FROM max(completed_at))::float8 AS last FROM workout_plan_requests"
        )
        assert row is not None
        return row["completed"], row["failed"], row["last"]
    finally:
        await conn.close()


async def _wait_completed(database_url: str, expected: int, within_seconds: float) -> tuple[int, int, float | None]:
    deadline = time.monotonic() + within_seconds
    while True:
        completed, failed, last = await _completed(database_url)
        if completed + failed >= expected or time.monotonic() > deadline:
            return completed, failed, last
        await asyncio.sleep(0.1)


def _grouped_writes(metrics_url: str) -> dict[str, float]:
    """Mean items per grouped write (plans per plan transaction, ledger rows per ledger one), from
    the persister's own histogram."""
    text = httpx.get(metrics_url, timeout=5).text
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "workout_grouped_write_items":
            continue
        for sample in family.samples:
            if sample.name.endswith("_sum"):
                sums[sample.labels["write"]] = sample.value
            elif sample.name.endswith("_count"):
                counts[sample.labels["write"]] = sample.value
    return {write: round(sums[write] / count, 1) for write, count in counts.items() if count}


def measure_persister(
    *, plans: int = 3000, workdir: Path | None = None, env: dict[str, str] | None = None, replicas: int = 1
) -> dict[str, Any]:
    """``replicas`` persister processes on the same consumer (as ``kubectl scale`` runs them); the
    clock starts once the last is ready, counting only the plans completed after that."""
    with workdir_or_scratch(workdir, "bench-persister-") as work:
        traffic = [plan_traffic(seed=1 + index % 5) for index in range(plans)]
        with infrastructure(work) as (nats_server, postgres), (work / "services.log").open("a") as log:
            asyncio.run(_seed_requests(postgres.url, traffic))
            asyncio.run(_warm_catalogue(postgres.url, traffic))
            publish_seconds = asyncio.run(_publish_all(nats_server.url, traffic))
            supervisor = Supervisor(log, color=False)
            try:
                ports = [free_port() for _ in range(replicas)]
                persisters = started_together(
                    supervisor,
                    roster.PERSISTER,
                    [
                        {
                            **QUIET,
                            "NATS_URL": nats_server.url,
                            "DATABASE_URL": postgres.url,
                            roster.PERSISTER.port_variable: str(port),
                            **(env or {}),
                        }
                        for port in ports
                    ],
                )
                pids = {
                    **{
                        "persister" if index == 0 else f"persister {index + 1}": child.process.pid
                        for index, child in enumerate(persisters)
                    },
                    "postgres": postgres.pid,
                    "nats-server": nats_server.pid,
                }
                before = {name: sample_tree(pid).cpu_seconds for name, pid in pids.items() if pid}
                ready_at = time.time()
                done_at_ready = asyncio.run(_completed(postgres.url))[0]
                completed, failed, last = asyncio.run(_wait_completed(postgres.url, plans, within_seconds=600))
                after = {name: sample_tree(pid).cpu_seconds for name, pid in pids.items() if pid}
                grouped = _grouped_writes(f"http://127.0.0.1:{ports[0]}/metrics")
            finally:
                supervisor.stop_all(timeout=15)
        cpu = {name: round(after[name] - before[name], 2) for name in before}
        measured = max(1, completed - done_at_ready)
        elapsed = max(1e-3, (last or ready_at) - ready_at)
        figures = {
            "plans": plans,
            "events_per_plan": 1,
            "calls_per_plan": len(traffic[0].generated.calls),
            "replicas": replicas,
            "completed": completed,
            "failed": failed,
            "publish_seconds": round(publish_seconds, 2),
            "completed_before_ready": done_at_ready,
            "seconds": round(elapsed, 2),
            "plans_per_s": round(measured / elapsed, 1),
            "cpu_seconds": cpu,
            "cpu_ms_per_plan": {name: round(1000 * seconds / measured, 2) for name, seconds in cpu.items()},
            "items_per_grouped_write": grouped,
        }
        print(
            f"persister alone ({replicas} process{'es' if replicas > 1 else ''}): {completed}/{plans}"
            f" in {elapsed:.1f} s = {figures['plans_per_s']} plans/s",
            flush=True,
        )
        if done_at_ready > plans // 10:
            print(f"  (!) {done_at_ready} plans done before the persister reported ready: too few to time", flush=True)
        return figures


if __name__ == "__main__":
    import json

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    replicas = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    sys.stdout.write(json.dumps(measure_persister(plans=count, replicas=replicas)) + "\n")
