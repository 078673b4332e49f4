"""The provider's budget under twice its load: 3 planners and 2 profilers sharing one budget.

Starts NATS, Postgres and the whole system (``tests.stack.ServiceStack``) with three planner and two
profiler replicas, the simulator metering the provider's tokens per minute (``--provider-tpm``),
and every replica sharing ``LLM_RATE_LIMITS`` set a little under it (``--share``). Then offers plan
requests for ``--minutes`` at ``--overload`` times what that budget admits (sized from each plan's
admission estimate: the skeleton's and eight weeks' output caps), from ``--users`` standard users,
one of whom sends ``--burst`` times as many as each other, and ``--priority-users`` in the priority
lane (``app_metadata.lane``). With ``--kill``, a planner and a profiler are killed (SIGKILL) mid-run
and restarted. Prints a JSON report:

- ``provider_429``: the simulator's rate-limit refusals (the goal: 0); every request's end;
- ``admission_wait_seconds``: p50/p95 by lane, from the replicas' histograms (a killed replica's
  counts before its kill are lost);
- ``fairness``: tokens each standard user got from the first minute on (the budget starts full, a
  minute's worth, and nobody waits until it is spent) until the offer ends, from the ledger: the
  most any user got beside the others' mean, and the burst user's;
- ``leak``: the shared entry 70 s after the last call: nobody waiting, the budget full again.

    python -m bench.provider_budget                       # ~8 minutes
    python -m bench.provider_budget --minutes 2 --kill
"""

import argparse
import asyncio
import json
import logging
import math
import random
import re
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats

from contracts.plan import PLAN_WEEKS, PlanSkeleton, TrainingWeek
from contracts.streams import LLM_BUDGETS
from devstack import NatsServer, PostgresServer, migrate
from service_runtime.buckets import Bucket
from service_runtime.llm.budget import BudgetState, Limits, refilled
from tests.stack import ServiceStack

log = logging.getLogger("bench.provider_budget")

MODEL = "gpt-4o-mini"
PLAN_ESTIMATE = PlanSkeleton.max_output_tokens + PLAN_WEEKS * TrainingWeek.max_output_tokens
_BUCKET = re.compile(r"^workout_llm_admission_wait_seconds_bucket\{(?P<labels>[^}]*)\} (?P<value>\S+)$", re.M)


@dataclass
class Order:
    user_id: uuid.UUID
    lane: str
    burst: bool
    sent_at: float = 0.0
    request_id: str | None = None


def _orders(args: argparse.Namespace, plans: int) -> list[Order]:
    rng = random.Random(args.seed)
    users = [(uuid.uuid4(), "standard", i == 0) for i in range(args.users)]
    users += [(uuid.uuid4(), "priority", False) for _ in range(args.priority_users)]
    weights = [args.burst if burst else 1 for _, _, burst in users]
    return [Order(u, lane, burst) for u, lane, burst in rng.choices(users, weights=weights, k=plans)]


async def _offer(stack: ServiceStack, orders: list[Order], seconds: float) -> None:
    gap = seconds / len(orders)
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:

        async def send(order: Order, at: float) -> None:
            await asyncio.sleep(max(0.0, started + at - time.monotonic()))
            order.sent_at = time.time()
            reply = await client.post(
                "/functions/v1/trigger-workout-plan",
                headers={"Authorization": f"Bearer {stack.token(order.user_id, lane=order.lane)}"},
                json={"userProfile": f"Intermediate, full gym, build muscle, 4 days a week. ({uuid.uuid4()})"},
            )
            if reply.status_code == 202:
                order.request_id = reply.json()["request_id"]
            else:
                log.warning("refused: %s %s", reply.status_code, reply.text[:200])

        await asyncio.gather(*(send(o, i * gap) for i, o in enumerate(orders)))


async def _settle(database_url: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    conn = await asyncpg.connect(database_url)
    try:
        while time.monotonic() < deadline:
            if not await conn.fetchval("SELECT count(*) FROM workout_plan_requests WHERE status = 'processing'"):
                return
            await asyncio.sleep(2)
    finally:
        await conn.close()


def _quantiles(stack: ServiceStack) -> dict[str, dict[str, float | int]]:
    """p50/p95 of the admission wait by lane, the replicas' histograms summed."""
    buckets: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for name, url in stack.health_urls.items():
        if not name.startswith(("planner", "profiler")):
            continue
        try:
            text = httpx.get(f"{url}/metrics", timeout=5).text
        except httpx.HTTPError:
            continue
        for match in _BUCKET.finditer(text):
            labels = dict(re.findall(r'(\w+)="([^"]*)"', match["labels"]))
            buckets[labels["lane"]][float(labels["le"])] += float(match["value"])
    out: dict[str, dict[str, float | int]] = {}
    for lane, counts in buckets.items():
        ordered = sorted(counts.items())
        total = ordered[-1][1] if ordered else 0
        figures: dict[str, float | int] = {"calls": int(total)}
        for q in (0.5, 0.95):
            figures[f"p{int(q * 100)}"] = next((le for le, c in ordered if c >= q * total), math.inf) if total else 0
        out[lane] = figures
    return out


async def _fairness(database_url: str, orders: list[Order], since: float, until: float) -> dict[str, Any]:
    """Tokens per standard user from the ledger in [since, until) (all of them had work waiting)."""
    lane_of = {o.request_id: o for o in orders if o.request_id}
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT c.request_id::text AS rid, c.prompt_tokens + c.completion_tokens AS tokens FROM llm_calls c"
            " WHERE c.called_at >= to_timestamp($1) AND c.called_at < to_timestamp($2) AND c.stage = 'planner'",
            since,
            until,
        )
        ends = await conn.fetch(
            "SELECT status, coalesce(error, '') AS error, count(*) FROM workout_plan_requests GROUP BY 1, 2"
        )
    finally:
        await conn.close()
    per_user: dict[uuid.UUID, int] = defaultdict(int)
    burst_user = None
    for row in rows:
        order = lane_of.get(row["rid"])
        if order is None or order.lane != "standard":
            continue
        per_user[order.user_id] += row["tokens"]
        if order.burst:
            burst_user = order.user_id
    others = [t for u, t in per_user.items() if u != burst_user]
    mean = sum(others) / len(others) if others else 0.0
    burst = per_user.get(burst_user, 0) if burst_user else 0
    return {
        "window_seconds": round(until - since, 1),
        "burst_user_tokens": burst,
        "other_users_mean_tokens": round(mean),
        "burst_over_mean": round(burst / mean, 2) if mean else None,
        "max_over_mean": round(max(per_user.values()) / mean, 2) if mean and per_user else None,
        "ends": {f"{r['status']}:{r['error'][:60]}": r["count"] for r in ends},
    }


async def _leak(nats_url: str, limits: Limits, after: float) -> dict[str, Any]:
    await asyncio.sleep(after)
    nc = await nats.connect(nats_url)
    try:
        entry = await (await Bucket.open(nc.jetstream(), LLM_BUDGETS, BudgetState)).get(MODEL)
    finally:
        await nc.close()
    if entry is None:
        return {"entry": None}
    now = refilled(entry, time.time(), limits)
    return {"waiting": len(now.waiting), "tokens_left_share": round(now.tokens / now.tokens_per_minute, 3)}


async def _run(args: argparse.Namespace, stack: ServiceStack, nats_url: str, database_url: str) -> dict[str, Any]:
    ours = Limits(int(args.provider_tpm * args.share), 100_000)
    plans_per_minute = args.overload * ours.tokens_per_minute / PLAN_ESTIMATE
    orders = _orders(args, round(plans_per_minute * args.minutes))
    started = time.time()
    killer = asyncio.create_task(_kill_midway(stack, args.minutes * 30)) if args.kill else None
    await _offer(stack, orders, args.minutes * 60)
    offered_until = time.time()
    if killer is not None:
        await killer
    await _settle(database_url, args.settle)
    with stack.simulator() as sim:
        stats = sim.get("/_sim/stats").json()
    # From minute 1: the budget starts full (a minute's worth), and nobody waits until it is spent.
    fairness = await _fairness(database_url, orders, started + 60, offered_until)
    return {
        "provider_tpm": args.provider_tpm,
        "budget_tpm": ours.tokens_per_minute,
        "plan_estimate_tokens": PLAN_ESTIMATE,
        "offered_plans_per_minute": round(plans_per_minute, 2),
        "offered_tokens_over_budget": args.overload,
        "plans": len(orders),
        "accepted": sum(o.request_id is not None for o in orders),
        "replicas": {"planner": 3, "profiler": 2},
        "killed": args.kill,
        "provider_429": stats.get("rate_limited_by_type", {}),
        "provider_requests": stats.get("requests_total"),
        "admission_wait_seconds": _quantiles(stack),
        "fairness": fairness,
        "leak": await _leak(nats_url, ours, 70.0),
        "seconds": round(time.time() - started, 1),
    }


async def _kill_midway(stack: ServiceStack, at: float) -> None:
    await asyncio.sleep(at)
    for name in (stack.replicas_of("planner")[0], stack.replicas_of("profiler")[0]):
        log.info("killing %s", name)
        await asyncio.to_thread(stack.kill, name)
    await asyncio.sleep(5)
    for name in (stack.replicas_of("planner")[0], stack.replicas_of("profiler")[0]):
        await asyncio.to_thread(stack.restart, name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.provider_budget", description=__doc__)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--provider-tpm", type=int, default=400_000)
    parser.add_argument("--share", type=float, default=0.95, help="LLM_RATE_LIMITS as a share of the provider's")
    parser.add_argument("--overload", type=float, default=2.0)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--burst", type=float, default=4.0, help="how many times as many plans one user sends")
    parser.add_argument("--priority-users", type=int, default=2)
    parser.add_argument("--tokens-per-second", type=float, default=400.0)
    parser.add_argument("--kill", action="store_true")
    parser.add_argument("--settle", type=float, default=900.0)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--report", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    workdir = Path(tempfile.mkdtemp(prefix="provider-budget-"))
    nats_server, postgres = NatsServer(workdir / "nats"), PostgresServer(workdir / "postgres", durable=False)
    limits = {MODEL: {"tokens_per_minute": int(args.provider_tpm * args.share), "requests_per_minute": 100_000}}
    env = {
        "LLM_RATE_LIMITS": json.dumps(limits),
        "SIM_TOKENS_PER_MINUTE": str(args.provider_tpm),
        "SIM_TOKENS_PER_SECOND": f"{args.tokens_per_second:g}",
        "SIM_FIRST_TOKEN_DELAY_SECONDS": "0.3",
        "REQUEST_DEADLINE_SECONDS": "3600",
        # The gateway's own per-user caps would refuse the burst user before the line could be fair.
        "GATEWAY_MAX_ACTIVE_REQUESTS_PER_USER": "1000",
        "GATEWAY_MAX_REQUESTS_PER_DAY_PER_USER": "1000",
        "GATEWAY_USER_DAILY_BUDGET_USD": "1000",
        "REQUEST_STALL_SECONDS": "600",
    }
    try:
        nats_server.start()
        postgres.start()
        migrate(postgres.url)
        stack = ServiceStack(
            nats_url=nats_server.url,
            database_url=postgres.url,
            log_path=workdir / "services.log",
            env=env,
            replicas={"planner": 3, "profiler": 2},
        )
        with stack:
            report = asyncio.run(_run(args, stack, nats_server.url, postgres.url))
    finally:
        postgres.stop()
        nats_server.stop()
    text = json.dumps(report, indent=2)
    if args.report is not None:
        args.report.write_text(text)
    print(text)
    print(f"logs: {workdir}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
