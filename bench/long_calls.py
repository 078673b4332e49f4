"""One planner process holding N concurrent, S-second LLM calls: does any lease lapse, what does it cost?

Starts a NATS (devstack, free port), the LLM simulator paced so one plan streams for about S
seconds, and one ``python -m services.planner`` with the default 30 s ack_wait. Publishes N
``plan.requested`` events at once straight to JetStream (no gateway, persister or profiler), then
waits for N ``plan.generated``. Reports: generated count, redeliveries of the ``planner`` consumer
(total deliveries minus N, and ``num_redelivered`` sampled during the run), paid plan calls seen by
the simulator, the planner's peak RSS and CPU seconds (from /proc), CPU per call, and wall time.

    python -m bench.long_calls                     # 1,000 calls of ~60 s
    python -m bench.long_calls --calls 50 --seconds 10
"""

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
import openai

from bench.full_stack import started_alone
from bench.procfs import peak_rss, sample_process
from contracts import roster, subjects
from contracts.events import PlanRequested
from contracts.plan import WorkoutPlan
from devstack import NatsServer, free_port
from devstack._readiness import http_ok, wait_until
from devstack.supervisor import Supervisor
from service_runtime.bus import EventBus
from service_runtime.strict_schema import chat_response_format

REPO_ROOT = Path(__file__).resolve().parent.parent
PROFILE = "I want to build muscle, 3x per week, I have a full gym"
FIRST_TOKEN_DELAY_SECONDS = 1.0


@dataclass
class Run:
    calls: int
    seconds: float
    ramp_seconds: float = 0.0
    generated: dict[str, float] = field(default_factory=dict)
    duplicates: int = 0
    max_num_redelivered: int = 0
    max_ack_pending: int = 0
    max_rss: int = 0


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1", **extra}


async def calibrate(sim_url: str) -> int:
    """Completion tokens of one plan for PROFILE (unpaced), to set the rate that makes it take S seconds."""
    async with openai.AsyncOpenAI(api_key="bench", base_url=f"{sim_url}/v1", max_retries=0) as client:
        # The schema the planner sends (the simulator refuses the SDK's own, as OpenAI does).
        reply = await client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": PROFILE}],
            response_format=chat_response_format(WorkoutPlan),
        )
    assert reply.usage is not None
    return reply.usage.completion_tokens


async def drive(run: Run, nats_url: str, sim_url: str, planner_pid: int, wait_seconds: float) -> dict[str, Any]:
    nc = await nats.connect(nats_url, max_reconnect_attempts=-1)
    js = nc.jetstream()
    started = time.monotonic()

    async def on_generated(msg: Any) -> None:
        request_id = str(json.loads(msg.data)["request_id"])
        if request_id in run.generated:
            run.duplicates += 1
        else:
            run.generated[request_id] = time.monotonic() - started

    sub = await nc.subscribe(subjects.PLAN_GENERATED, cb=on_generated)
    before = sample_process(planner_pid)
    assert before is not None, "the planner is not running"
    async with EventBus(nats_url, client_name="bench", publish_timeout_seconds=30) as bus:
        started = time.monotonic()
        events = [
            PlanRequested(request_id=uuid.uuid4(), user_id=uuid.uuid4(), user_profile=PROFILE) for _ in range(run.calls)
        ]
        # At once by default; with a ramp, in even steps of 0.1 s (arrivals spread as traffic is,
        # so the calls do not all end in the same second either).
        step = 200 if run.ramp_seconds <= 0 else max(1, round(run.calls / (run.ramp_seconds * 10)))
        for batch in range(0, len(events), step):
            if run.ramp_seconds > 0:
                await asyncio.sleep(max(0.0, started + batch / step * 0.1 - time.monotonic()))
            await asyncio.gather(*(bus.publish(e) for e in events[batch : batch + step]))
        published = time.monotonic() - started
    deadline = started + wait_seconds
    while len(run.generated) < run.calls and time.monotonic() < deadline:
        await asyncio.sleep(1.0)
        now = sample_process(planner_pid)
        if now is not None:
            run.max_rss = max(run.max_rss, now.rss_bytes)
        info = await js.consumer_info("WORKOUT_EVENTS", "planner")
        run.max_num_redelivered = max(run.max_num_redelivered, info.num_redelivered or 0)
        run.max_ack_pending = max(run.max_ack_pending, info.num_ack_pending or 0)
    wall = time.monotonic() - started
    after = sample_process(planner_pid)
    await asyncio.sleep(1.0)  # late duplicates, if any
    await sub.unsubscribe()
    info = await js.consumer_info("WORKOUT_EVENTS", "planner")
    stream = await js.stream_info("WORKOUT_EVENTS", subjects_filter=subjects.PLAN_GENERATED)
    await nc.close()
    async with httpx.AsyncClient(base_url=sim_url, timeout=10) as sim:
        stats = (await sim.get("/_sim/stats")).json()
    cpu = (after.cpu_seconds - before.cpu_seconds) if after else float("nan")
    durations = sorted(run.generated.values())
    return {
        "calls": run.calls,
        "target_seconds_per_call": run.seconds,
        "ramp_seconds": run.ramp_seconds,
        "published_in_seconds": round(published, 2),
        "plan_generated": len(run.generated),
        "plan_generated_in_stream": (stream.state.subjects or {}).get(subjects.PLAN_GENERATED, 0),
        "duplicate_plan_generated": run.duplicates,
        "deliveries": info.delivered.consumer_seq,
        "redeliveries": info.delivered.consumer_seq - run.calls,
        "num_redelivered_max_sampled": run.max_num_redelivered,
        "ack_pending_max": run.max_ack_pending,
        "simulator_plan_requests": stats["requests_total"],
        "simulator_plan_completions": stats["completions_by_schema"].get("WorkoutPlan", 0),
        "simulator_abandoned": stats["abandoned_total"],
        "simulator_responses_created": stats.get("responses_created_total", 0),
        "first_generated_after_seconds": round(durations[0], 1) if durations else None,
        "last_generated_after_seconds": round(durations[-1], 1) if durations else None,
        "wall_seconds": round(wall, 1),
        "planner_rss_peak_mib": round(max(run.max_rss, peak_rss(planner_pid) or 0) / 2**20, 1),
        "planner_rss_before_mib": round(before.rss_bytes / 2**20, 1),
        "planner_cpu_seconds": round(cpu, 2),
        "planner_cpu_ms_per_call": round(1000 * cpu / run.calls, 2),
        "planner_cpu_share_of_one_core": round(cpu / wall, 3) if wall else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.long_calls", description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0, help="how long each plan call streams")
    parser.add_argument("--ramp-seconds", type=float, default=0.0, help="spread the publishes over this long")
    parser.add_argument("--timeout", type=float, default=None, help="give up after this long (default 3 x S + 120)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--report", type=Path, default=None, help="write the figures as JSON here")
    parser.add_argument("--llm-mode", choices=("chat_stream", "responses_background"), default="chat_stream")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="extra planner setting")
    args = parser.parse_args(argv)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-")).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "services.log"
    sim_port = free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    with NatsServer(workdir / "nats") as nats_server, log_path.open("a") as log:
        supervisor = Supervisor(log, color=False)
        try:
            supervisor.start(
                "simulator",
                [sys.executable, "-m", "llm_simulator", "--port", str(sim_port), "--tokens-per-second", "0"],
                env=_env(SIM_FIRST_TOKEN_DELAY_SECONDS=str(FIRST_TOKEN_DELAY_SECONDS), SIM_LOG_LEVEL="WARNING"),
                cwd=REPO_ROOT,
            )
            wait_until(lambda: http_ok(f"{sim_url}/healthz"), timeout=30, what="simulator")
            tokens = asyncio.run(calibrate(sim_url))
            rate = tokens / max(0.1, args.seconds - FIRST_TOKEN_DELAY_SECONDS)
            httpx.patch(f"{sim_url}/_sim/config", json={"tokens_per_second": rate}).raise_for_status()
            httpx.post(f"{sim_url}/_sim/reset").raise_for_status()
            planner = started_alone(
                supervisor,
                roster.PLANNER,
                {
                    "NATS_URL": nats_server.url,
                    "OPENAI_BASE_URL": f"{sim_url}/v1",
                    "OPENAI_API_KEY": "bench",
                    "PLANNER_LLM_MODE": args.llm_mode,
                    # One whole-plan call per request: the mode whose calls last minutes
                    # (parallel generation writes nine shorter parts; --env can choose it).
                    "PLANNER_GENERATION": "single",
                    **dict(item.split("=", 1) for item in args.env),
                },
                details=lambda: log_path.read_text()[-3000:],
            )
            timeout = args.timeout or 3 * args.seconds + 120
            run = Run(args.calls, args.seconds, args.ramp_seconds)
            figures = asyncio.run(drive(run, nats_server.url, sim_url, planner.process.pid, timeout))
        finally:
            supervisor.stop_all(timeout=15)
    figures["llm_mode"] = args.llm_mode
    figures["plan_tokens"] = tokens
    figures["tokens_per_second"] = round(rate, 1)
    figures["workdir"] = str(workdir)
    width = max(len(k) for k in figures)
    out = [f"long LLM calls on one planner ({args.llm_mode}): {args.calls} x ~{args.seconds:g} s"]
    out += [f"  {key.ljust(width)}  {value}" for key, value in figures.items()]
    if args.report is not None:
        args.report.write_text(json.dumps(figures, indent=2))
    ok = figures["plan_generated"] == args.calls and figures["redeliveries"] == 0
    if ok and args.workdir is None:
        shutil.rmtree(workdir, ignore_errors=True)
    out.append("OK" if ok else "FAILED: not every call produced one plan.generated without redelivery")
    sys.stdout.write("\n".join(out) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
