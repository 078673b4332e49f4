"""One fault run: start everything, send plans while the chaos schedule runs, let it settle, check, report.

The run owns its NATS and Postgres (devstack objects on free ports, in a work directory), so it can
restart them; the services run as separate processes through ``tests.stack.ServiceStack``.
"""

import asyncio
import json
import logging
import random
import re
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats

from contracts import roster
from devstack import NatsServer, PostgresServer, migrate
from tests.faults.chaos import Chaos, draw_schedule
from tests.faults.checker import Expectation, check
from tests.faults.load import draw_orders, submit_all
from tests.stack import ServiceStack

log = logging.getLogger("faults")

# How the fault rate is split across the simulator's kinds. Hangs are rare: each costs a read timeout.
FAULT_SHARES = {"p_rate_limit": 0.30, "p_server_error": 0.30, "p_malformed": 0.17, "p_truncate": 0.17, "p_hang": 0.06}
# Requests that carry a forced permanent fault, and the reason each must end with. The invalid
# reply is a truncated one: it is invalid in every API (in background mode ``malformed`` is a
# fault on the wire that the next poll gets past, so it cannot force an invalid reply there).
FORCED = {"quota": "llm_quota_exhausted", "truncate": "invalid_llm_reply", "refusal": "invalid_llm_reply"}
# Durable consumer -> the subject it reads.
CONSUMERS = {spec.durable: spec.filter_subject for service in roster.WORKERS for spec in service.consumers}
_FAULT_LINE = re.compile(r"injecting fault (\w+) into a (\w+) request")


@dataclass(frozen=True)
class ScenarioOptions:
    plans: int = 100
    kills: int = 20
    nats_restart: bool = True
    postgres_restart: bool = True
    fault_rate: float = 0.3
    llm_mode: str = "chat_stream"
    generation: str = "parallel"
    concurrency: int = 20
    seed: int = 7
    quota_requests: int = 1
    invalid_requests: int = 1
    refusal_requests: int = 1
    review_requests: int = 10  # ask to see their skeleton first; nobody answers (see load.draw_orders)
    freeze: bool = True
    planner_replicas: int = 2
    window_seconds: float | None = None
    settle_seconds: float = 180.0
    ack_wait_seconds: float = 6.0
    max_deliver: int = 5
    tokens_per_second: float = 3000.0
    stall_seconds: float = 15.0
    deadline_seconds: float = 300.0
    workdir: Path | None = None
    keep_workdir: bool = False
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def window(self) -> float:
        """Seconds over which plans arrive and the chaos happens."""
        return self.window_seconds or max(40.0, 6.0 * self.kills)


@dataclass
class ScenarioResult:
    violations: list[str]
    figures: dict[str, Any]
    workdir: Path

    @property
    def ok(self) -> bool:
        return not self.violations


def service_env(options: ScenarioOptions) -> dict[str, str]:
    """Every service's settings for a fault run (some are read only once the lead's work lands)."""
    return {
        "CONSUMER_ACK_WAIT_SECONDS": f"{options.ack_wait_seconds:g}",
        "CONSUMER_MAX_DELIVER": str(options.max_deliver),
        # A hang then costs seconds, not the default minute.
        "LLM_READ_TIMEOUT_SECONDS": "3",
        "PLANNER_LLM_MODE": options.llm_mode,
        "PLANNER_GENERATION": options.generation,
        # Time is compressed here (plans in seconds, leases of 6 s, re-drive after 15 s): polls too.
        "PLANNER_POLL_INTERVAL_SECONDS": "1",
        "GATEWAY_OUTBOX_RELAY_INTERVAL_SECONDS": "0.5",
        "PERSISTER_SWEEP_INTERVAL_SECONDS": "2",
        "REQUEST_STALL_SECONDS": f"{options.stall_seconds:g}",
        "REQUEST_DEADLINE_SECONDS": f"{options.deadline_seconds:g}",
        # A killed profiler's claim would otherwise hold its exercise (and every plan needing it) 5 minutes.
        "PROFILER_CLAIM_TTL_SECONDS": "15",
        "SIM_TOKENS_PER_SECOND": f"{options.tokens_per_second:g}",
        "SIM_FIRST_TOKEN_DELAY_SECONDS": "0.2",
        "SIM_SEED": str(options.seed),
        **options.extra_env,
    }


def run_scenario(options: ScenarioOptions) -> ScenarioResult:
    """Run the whole scenario (blocking); the work directory keeps every log."""
    workdir = Path(options.workdir or tempfile.mkdtemp(prefix="faults-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    nats_server = NatsServer(workdir / "nats")
    postgres = PostgresServer(workdir / "postgres", durable=False)
    try:
        nats_server.start()
        postgres.start()
        migrate(postgres.url)
        stack = ServiceStack(
            nats_url=nats_server.url,
            database_url=postgres.url,
            log_path=workdir / "services.log",
            env=service_env(options),
            replicas={"planner": options.planner_replicas},
        )
        with stack:
            result = asyncio.run(_drive(options, stack, nats_server, postgres, workdir))
    finally:
        postgres.stop()
        nats_server.stop()
    if result.ok and options.workdir is None and not options.keep_workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return result


async def _drive(
    options: ScenarioOptions, stack: ServiceStack, nats_server: NatsServer, postgres: PostgresServer, workdir: Path
) -> ScenarioResult:
    with stack.simulator() as sim:
        shares = {k: round(v * options.fault_rate, 4) for k, v in FAULT_SHARES.items()}
        sim.patch("/_sim/config", json={**shares, "retry_after_seconds": 1.0, "hang_seconds": 30.0}).raise_for_status()
        sim.post("/_sim/reset").raise_for_status()

    forced = {
        "quota": options.quota_requests,
        "truncate": options.invalid_requests,
        "refusal": options.refusal_requests,
    }
    orders = draw_orders(
        seed=options.seed,
        plans=options.plans,
        spread_seconds=options.window * 0.8,
        forced=forced,
        # One call writes the whole plan in single generation: no skeleton to show.
        reviews=options.review_requests if options.generation != "single" else 0,
    )
    planners = stack.replicas_of("planner")
    schedule = draw_schedule(
        seed=options.seed,
        window_seconds=options.window,
        kills=options.kills,
        replicas={name: stack.replicas_of(name) for name in roster.NAMES},
        nats_restart=options.nats_restart,
        postgres_restart=options.postgres_restart,
        freeze=planners[-1] if options.freeze else None,
        freeze_seconds=2.5 * options.ack_wait_seconds,
    )
    frozen_requests: list[str] = []

    async def in_flight() -> int | None:
        ids = await _processing_ids(postgres.url)
        frozen_requests.extend(ids)
        return len(ids)

    chaos = Chaos(stack, nats_server, postgres, random.Random(options.seed), in_flight=in_flight)
    started = time.monotonic()
    log.info("sending %d plans over %.0fs with %d chaos events", len(orders), options.window * 0.8, len(schedule))
    submissions, _ = await asyncio.gather(
        submit_all(stack, orders, concurrency=options.concurrency, started=started),
        chaos.run(schedule, started),
    )
    load_done = time.monotonic() - started
    settled = await _settle(postgres.url, options.settle_seconds)
    settle_time = time.monotonic() - started - load_done

    expectations = [Expectation(f"[[sim:fault={kind}]]", reason) for kind, reason in FORCED.items()]
    checked = await check(postgres.url, expectations)
    violations = list(checked.violations)
    figures: dict[str, Any] = {"options": _jsonable(asdict(options)), "db": checked.figures}

    accepted = [s for s in submissions if s.outcome == "accepted"]
    figures["load"] = {
        "orders": len(orders),
        "accepted": len(accepted),
        "ambiguous": sum(s.outcome == "ambiguous" for s in submissions),
        "rejected": sum(s.outcome == "rejected" for s in submissions),
        "retried_submissions": sum(s.attempts > 1 for s in submissions),
        "load_and_chaos_seconds": round(load_done, 1),
        "settle_seconds": round(settle_time, 1),
        "settled": settled,
    }
    never = [f"{s.order.profile[:50]!r}: {s.detail}" for s in submissions if s.outcome == "rejected"]
    if never:
        violations.append(
            f"{len(never)} plan requests were never accepted by the gateway:\n    " + "\n    ".join(never)
        )
    known = await _existing_ids(postgres.url)
    lost = [s.request_id for s in accepted if s.request_id not in known]
    if lost:
        violations.append(f"{len(lost)} requests answered 202 have no row in the database: {lost[:10]}")

    kills = Counter(r.event.target for r in chaos.records if r.event.action == "kill")
    figures["chaos"] = {
        "kills": sum(kills.values()),
        "kills_by_process": dict(kills),
        "nats_restarts": sum(r.event.action == "nats_restart" and r.ok for r in chaos.records),
        "postgres_restarts": sum(r.event.action == "postgres_restart" and r.ok for r in chaos.records),
        "events": [
            {
                "action": r.event.action,
                "target": r.event.target,
                "planned_at": round(r.event.at, 1),
                "started": round(r.started, 1),
                "seconds": round(r.finished - r.started, 1),
                "ok": r.ok,
                "detail": r.detail,
                **({"in_flight": r.in_flight_at_start} if r.in_flight_at_start is not None else {}),
            }
            for r in chaos.records
        ],
    }
    violations += [
        f"chaos event {r.event.action} {r.event.target} failed: {r.detail}" for r in chaos.records if not r.ok
    ]

    figures["frozen_worker"] = await _frozen_outcome(postgres.url, frozen_requests)
    if figures["frozen_worker"]["not_one_plan"]:
        violations.append(
            "requests in flight while a planner was frozen did not end with exactly one plan: "
            f"{figures['frozen_worker']['not_one_plan']}"
        )

    figures["reviews"] = await _review_outcome(postgres.url)
    if figures["reviews"]["wrong"]:
        violations.append(f"requests that asked to see their skeleton ended wrongly: {figures['reviews']['wrong']}")

    forced_requests = sum(1 for o in orders if o.forced)
    figures["llm"] = llm = await _llm_figures(stack, checked.figures, forced_requests)
    quota_requests = sum(1 for o in orders if o.forced == "quota")
    quota_calls = llm["plan_faults"].get("quota", 0) + llm["profile_faults"].get("quota", 0)
    if quota_requests and quota_calls != quota_requests:
        violations.append(
            f"{quota_requests} insufficient_quota request(s) reached the simulator {quota_calls} time(s);"
            " expected exactly one attempt each (a permanent error must not be retried)"
        )
    figures["ledger"] = await _ledger_figures(postgres.url, llm["simulator"])
    figures["consumers"] = await _consumer_figures(nats_server.url)
    figures["workdir"] = str(workdir)
    if violations:
        figures["log_tail"] = stack.log_tail(60)
    (workdir / "report.json").write_text(json.dumps({"violations": violations, "figures": figures}, indent=2))
    return ScenarioResult(violations, figures, workdir)


async def _settle(database_url: str, timeout: float) -> bool:
    """Wait (bounded) until no request is processing; the database may still be coming back."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = await asyncpg.connect(database_url, timeout=5)
            try:
                left = await conn.fetchval("SELECT count(*) FROM workout_plan_requests WHERE status = 'processing'")
            finally:
                await conn.close()
            if left == 0:
                return True
        except (OSError, asyncpg.PostgresError, TimeoutError):
            pass
        await asyncio.sleep(1.0)
    return False


async def _processing_ids(database_url: str) -> list[str]:
    try:
        conn = await asyncpg.connect(database_url, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return []
    try:
        rows = await conn.fetch("SELECT id FROM workout_plan_requests WHERE status = 'processing'")
        return [str(r["id"]) for r in rows]
    finally:
        await conn.close()


async def _existing_ids(database_url: str) -> set[str]:
    conn = await asyncpg.connect(database_url)
    try:
        return {str(r["id"]) for r in await conn.fetch("SELECT id FROM workout_plan_requests")}
    finally:
        await conn.close()


async def _review_outcome(database_url: str) -> dict[str, Any]:
    """What became of the requests that asked to see their skeleton first (nobody answered them): each
    completed one went on by itself after its wait, with exactly one plan; a failed one has none."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT r.id, r.status, r.review_action, (SELECT count(*) FROM workout_plans p WHERE p.request_id = r.id)"
            " AS plans FROM workout_plan_requests r WHERE r.review_seconds > 0"
        )
    finally:
        await conn.close()
    wrong = [
        f"{r['id']} {r['status']} action={r['review_action']} plans={r['plans']}"
        for r in rows
        if (r["status"] == "completed" and (r["plans"] != 1 or r["review_action"] != "timeout"))
        or (r["status"] == "failed" and r["plans"] != 0)
    ]
    return {
        "asked": len(rows),
        "by_status": dict(Counter(r["status"] for r in rows)),
        "went_on_by_itself": sum(1 for r in rows if r["review_action"] == "timeout"),
        "wrong": wrong,
    }


async def _frozen_outcome(database_url: str, request_ids: list[str]) -> dict[str, Any]:
    """What became of the requests that were processing when a planner was frozen (a superset of those it held)."""
    if not request_ids:
        return {"in_flight": 0, "by_status": {}, "not_one_plan": []}
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT r.id, r.status, (SELECT count(*) FROM workout_plans p WHERE p.request_id = r.id) AS plans"
            " FROM workout_plan_requests r WHERE r.id = ANY($1::uuid[])",
            request_ids,
        )
    finally:
        await conn.close()
    wrong = [
        f"{r['id']} {r['status']} plans={r['plans']}"
        for r in rows
        if (r["status"] == "completed" and r["plans"] != 1) or (r["status"] == "failed" and r["plans"] != 0)
    ]
    return {"in_flight": len(rows), "by_status": dict(Counter(r["status"] for r in rows)), "not_one_plan": wrong}


# What one call of each planner schema is worth, in whole plans. A progressive plan's call count
# depends on its days a week: 1/32 is a 3-day plan's (outline, overview, 9 parts of week 1, 21 days).
_PROGRESSIVE_PART = 1 / 32
_PLAN_PARTS = {
    "WorkoutPlan": 1.0,
    "PlanSkeleton": 1 / 9,
    "TrainingWeek": 1 / 9,
    "PlanOutline": _PROGRESSIVE_PART,
    "PlanOverview": _PROGRESSIVE_PART,
    "TrainingDay": _PROGRESSIVE_PART,
}


async def _llm_figures(stack: ServiceStack, db: dict[str, Any], forced_requests: int) -> dict[str, Any]:
    """Paid LLM calls, from the simulator's own count of what a provider would bill.

    The simulator counts, per schema, every generation it ran to the end (intact or spoiled by a
    fault: malformed, truncated, refused, broken), abandoned (a hang the client timed out on, a
    stream cut by a kill) or cancelled; errors answered before generating (429, 500, a failed
    background response) are free. Planner calls are counted in whole plans: a single-call
    ``WorkoutPlan`` is one, a parallel ``PlanSkeleton`` or ``TrainingWeek`` a ninth, a progressive
    part about a 32nd (exact for a 3-day plan).

    *Per plan* is over the requests that met only the random faults: the calls forced by a
    directive (the quota, invalid-reply and refusal requests, built to fail) and those requests
    are left out and reported apart. *Intact plan completions per completed plan* isolates the
    re-buys re-attach is for (a plan paid for in full and thrown away).
    """
    async with httpx.AsyncClient(base_url=stack.simulator_url, timeout=10) as sim:
        stats = (await sim.get("/_sim/stats")).json()
    faults: dict[str, Counter[str]] = {"ExerciseProfile": Counter()}
    text = stack.log_path.read_text(encoding="utf-8", errors="replace")
    for kind, schema in _FAULT_LINE.findall(text):
        faults.setdefault(schema, Counter())[kind] += 1
    billed, forced = Counter(stats["billed_by_schema"]), Counter(stats["billed_forced_by_schema"])

    def plans_worth(counts: Counter[str]) -> float:
        return sum(weight * counts[schema] for schema, weight in _PLAN_PARTS.items())

    plan_faults: Counter[str] = Counter()
    for schema in _PLAN_PARTS:
        plan_faults.update(faults.get(schema, Counter()))
    plan_ok = plans_worth(Counter(stats["completions_by_schema"]))
    plan_paid = plans_worth(billed - forced)
    random_requests = max(1, db["requests"] - forced_requests)
    completed = max(1, db["by_status"].get("completed", 0))
    return {
        "simulator": stats,
        "faults_injected": sum(stats["faults_by_kind"].values()),
        "plan_faults": dict(plan_faults),
        "profile_faults": dict(faults["ExerciseProfile"]),
        "plan_completions": round(plan_ok, 2),
        # Background mode: every accepted POST /v1/responses (only the planner uses that API).
        "responses_created": stats.get("responses_created_total", 0),
        "responses_cancelled": stats.get("responses_cancelled_total", 0),
        "abandoned": stats["abandoned_total"],
        "paid_planner_calls": round(plan_paid, 2),
        "paid_planner_calls_per_plan": round(plan_paid / random_requests, 3),
        "forced_requests": forced_requests,
        "paid_planner_calls_forced": round(plans_worth(forced), 2),
        "intact_plan_completions_per_completed_plan": round(plan_ok / completed, 3),
        "paid_profile_calls_per_plan": round(billed["ExerciseProfile"] / max(1, db["requests"]), 3),
    }


async def _ledger_figures(database_url: str, simulator: dict[str, Any]) -> dict[str, Any]:
    """The cost ledger against the simulator's count of the tokens it delivered. Not an invariant:
    a call whose reply arrived just before its process was killed is paid and never recorded."""
    conn = await asyncpg.connect(database_url, timeout=5)
    try:
        row = await conn.fetchrow(
            "SELECT count(*) AS calls, count(DISTINCT call_id) AS distinct_calls,"
            " coalesce(sum(completion_tokens), 0) AS completion_tokens FROM llm_calls"
        )
    finally:
        await conn.close()
    assert row is not None
    delivered = simulator.get("completion_tokens_total") or 0
    return {
        "calls": row["calls"],
        "distinct_calls": row["distinct_calls"],
        "completion_tokens": row["completion_tokens"],
        "simulator_completion_tokens": delivered,
        "coverage": round(row["completion_tokens"] / delivered, 4) if delivered else None,
    }


async def _consumer_figures(nats_url: str) -> dict[str, Any]:
    nc = await nats.connect(nats_url, connect_timeout=5, max_reconnect_attempts=3)
    try:
        js = nc.jetstream()
        out: dict[str, Any] = {}
        stream = await js.stream_info("WORKOUT_EVENTS", subjects_filter=">")
        messages = stream.state.subjects or {}
        for name, subject in CONSUMERS.items():
            try:
                info = await js.consumer_info("WORKOUT_EVENTS", name)
            except Exception as exc:
                out[name] = f"unavailable: {exc}"
                continue
            # Deliveries beyond one per message: naks of transient faults, lapsed leases, restarts.
            out[name] = {
                "messages": messages.get(subject, 0),
                "extra_deliveries": (info.delivered.consumer_seq or 0) - messages.get(subject, 0),
                "pending": info.num_pending,
                "ack_pending": info.num_ack_pending,
            }
        try:
            dead = await js.stream_info("WORKOUT_DEAD_LETTERS")
            out["dead_letters"] = dead.state.messages
        except Exception:
            out["dead_letters"] = None
        return out
    finally:
        await nc.close()


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def format_report(result: ScenarioResult) -> str:
    """The human-readable report printed at the end of a run."""
    f = result.figures
    db, load, chaos, llm, frozen = f["db"], f["load"], f["chaos"], f["llm"], f["frozen_worker"]
    opts = f["options"]
    lines = [
        f"fault run: {opts['plans']} plans, seed {opts['seed']}, generation {opts['generation']},"
        f" llm mode {opts['llm_mode']},"
        f" fault rate {opts['fault_rate']:.0%}, concurrency {opts['concurrency']}",
        f"  load      accepted {load['accepted']}/{load['orders']} (retried {load['retried_submissions']},"
        f" ambiguous {load['ambiguous']}), load+chaos {load['load_and_chaos_seconds']}s,"
        f" settle {load['settle_seconds']}s, settled={load['settled']}",
        f"  chaos     kills {chaos['kills']} {chaos['kills_by_process']}, nats restarts {chaos['nats_restarts']},"
        f" postgres restarts {chaos['postgres_restarts']}",
        f"  frozen    {frozen['in_flight']} requests in flight during the freeze -> {frozen['by_status']}",
        f"  reviews   {f['reviews']['asked']} asked to see their skeleton first -> {f['reviews']['by_status']};"
        f" went on by itself {f['reviews']['went_on_by_itself']}",
        f"  requests  {db['requests']} {db['by_status']}; failed by reason {db['failed_by_reason']};"
        f" stuck {db['stuck']}",
        f"  plans     {db['plans']} rows; time to terminal p50 {_s(db['seconds_to_terminal_p50'])}"
        f" p95 {_s(db['seconds_to_terminal_p95'])} max {_s(db['seconds_to_terminal_max'])}",
        f"  llm       faults injected {llm['faults_injected']} {llm['simulator']['faults_by_kind']}",
        f"            paid planner calls/plan {llm['paid_planner_calls_per_plan']}"
        f" (abandoned generations {llm['abandoned']}; the {llm['forced_requests']} forced-fault requests"
        f" paid {llm['paid_planner_calls_forced']} apart);"
        f" intact plan completions/completed plan {llm['intact_plan_completions_per_completed_plan']};"
        f" paid profile calls/plan {llm['paid_profile_calls_per_plan']};"
        f" responses created {llm['responses_created']} (cancelled {llm['responses_cancelled']})",
        f"  ledger    {f['ledger']['calls']} calls, {f['ledger']['completion_tokens']:,} completion tokens ="
        f" {f['ledger']['coverage']} of the {f['ledger']['simulator_completion_tokens']:,} the simulator delivered",
        f"  consumers {f['consumers']}",
        f"  workdir   {f['workdir']}",
    ]
    if result.violations:
        lines.append(f"VIOLATIONS ({len(result.violations)}):")
        lines += [f"  - {v}" for v in result.violations]
    else:
        lines.append("OK: every invariant held")
    return "\n".join(lines)


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}s"
