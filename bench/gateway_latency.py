"""Section 1: the gateway's accept path under open-loop load, beside its no-op route, in one run.

Twice: with the gateway alone on NATS and Postgres (nothing consumes what it publishes: the cost
of an accept, all included, is the gateway's, Postgres's and nats-server's CPU over the accepts),
and with the whole stack running (NATS, Postgres, simulator, gateway, planner, profiler,
persister), where the accept path shares the cores with the rest of the pipeline. With the stack, the
simulator answers each plan call after 10 minutes, longer than the section runs, and the planner
uses background responses, as ``make run`` does, so the requests accepted during the run wait in
the planner (up to its in-flight cap, polling) and the rest of the pipeline stays a steady, small
background load instead of a growing one that would make each rate pay for the one before. (With
60 s, the plans accepted first came back during the last rates: the planner and the simulator then
took most of a core while 1,500/s was offered.) The pipeline's own throughput is section 2's.

At each rate the generator (``bench.loadgen``, its own process) first calls ``GET /healthz``,
the gateway's no-op route (same process, same uvicorn on uvloop, same middleware), then
``POST /functions/v1/trigger-workout-plan`` as ``users`` different users (the per-user quotas are
raised so that none of the requests is refused).
"""

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.full_stack import QUIET, infrastructure, running_stack, started_alone
from bench.loadgen import LoadSpec
from bench.procfs import sample_tree
from bench.workdirs import workdir_or_scratch
from contracts import roster
from devstack import free_port
from devstack.supervisor import Supervisor
from services.gateway.devtoken import mint_dev_token
from tests.stack import JWT_SECRET, REPO_ROOT

__all__ = ["BODY", "GATEWAY_ENV", "TRIGGER", "gateway_under_test", "load", "measure_gateway"]

BODY = json.dumps({"userProfile": "I want to build muscle, 3x per week, I have a full gym"})
TRIGGER = "/functions/v1/trigger-workout-plan"

GATEWAY_ENV = {
    "GATEWAY_MAX_ACTIVE_REQUESTS_PER_USER": "1000000",
    "GATEWAY_MAX_REQUESTS_PER_DAY_PER_USER": "1000000",
    "PLANNER_LLM_MODE": "responses_background",
    "PLANNER_MAX_IN_FLIGHT": "500",
    "SIM_TOKENS_PER_SECOND": "0",
    "SIM_FIRST_TOKEN_DELAY_SECONDS": "600",
}


def load(spec: LoadSpec, workdir: Path) -> dict[str, Any]:
    spec_path = workdir / f"load-{uuid.uuid4().hex[:8]}.json"
    spec_path.write_text(json.dumps(asdict(spec)))
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", str(spec_path)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=spec.seconds + 90,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"load generator exited {done.returncode}: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure_gateway(
    *,
    rates: tuple[float, ...] = (100, 250, 500, 1000, 1500, 2000),
    seconds: float = 8.0,
    users: int = 1000,
    workdir: Path | None = None,
    env: dict[str, str] | None = None,
    alone: bool = False,
) -> dict[str, Any]:
    """Each rate's no-op and accept runs, with the CPU each process spent; ``alone``: the gateway on
    NATS and Postgres only, else the whole stack."""
    with workdir_or_scratch(workdir, "bench-gateway-") as work:
        with gateway_under_test(work, {**GATEWAY_ENV, **(env or {})}, alone) as (url, pids, _):
            host, port = url.removeprefix("http://").split(":")
            tokens = tuple(mint_dev_token(JWT_SECRET, uuid.uuid4()) for _ in range(users))
            warm = LoadSpec(host, int(port), "POST", TRIGGER, 100, 2.0, tokens, BODY)
            load(warm, work)  # JIT-free Python still warms: pools fill, caches load
            runs: list[dict[str, Any]] = []
            for rate in rates:
                for label, spec in (
                    ("noop", LoadSpec(host, int(port), "GET", "/healthz", rate, seconds)),
                    ("accept", LoadSpec(host, int(port), "POST", TRIGGER, rate, seconds, tokens, BODY)),
                ):
                    before = {name: sample_tree(pid).cpu_seconds for name, pid in pids.items()}
                    started = time.monotonic()
                    figures = load(spec, work)
                    wall = time.monotonic() - started
                    after = {name: sample_tree(pid).cpu_seconds for name, pid in pids.items()}
                    cpu = {name: round(after[name] - before[name], 2) for name in pids}
                    figures.update(endpoint=label, wall_seconds=round(wall, 1), cpu_seconds=cpu)
                    ok = max(1, figures["ok"])
                    figures["gateway_cpu_ms_per_request"] = round(1000 * cpu.get("gateway", 0.0) / ok, 3)
                    # The accept path's own processes; with the whole stack the rest is the pipeline's work.
                    figures["cpu_ms_per_request"] = {
                        name: round(1000 * cpu[name] / ok, 3) for name in _ACCEPT_PATH if name in cpu
                    }
                    runs.append(figures)
                    lat = figures["latency_ms"]
                    print(
                        f"gateway{' alone' if alone else ''} {label:6} {rate:6.0f}/s:"
                        f" ok {figures['ok']}/{figures['sent']} "
                        f"thr {figures['throughput_ok_per_s']}/s p50 {lat['p50']} p95 {lat['p95']} p99 {lat['p99']} ms"
                        f" CPU {sum(figures['cpu_ms_per_request'].values()):.2f} ms/req",
                        flush=True,
                    )
                    time.sleep(1.0)
        return {"rates": list(rates), "seconds_per_rate": seconds, "users": users, "env": GATEWAY_ENV, "runs": runs}


_ACCEPT_PATH = ("gateway", "postgres", "nats-server")


@contextmanager
def gateway_under_test(workdir: Path, env: dict[str, str], alone: bool) -> Iterator[tuple[str, dict[str, int], str]]:
    """The gateway's URL, the pids to sample and the database URL: the gateway alone on NATS and
    Postgres, or in the whole stack."""
    if not alone:
        with running_stack(workdir, env=env) as stack:
            yield stack.services.gateway_url, stack.pids(), stack.postgres.url
        return
    with infrastructure(workdir) as (nats_server, postgres), (workdir / "services.log").open("a") as log:
        supervisor = Supervisor(log, color=False)
        port = free_port()
        try:
            gateway = started_alone(
                supervisor,
                roster.GATEWAY,
                {
                    **QUIET,
                    **env,
                    "NATS_URL": nats_server.url,
                    "DATABASE_URL": postgres.url,
                    "SUPABASE_JWT_SECRET": JWT_SECRET,
                    "GATEWAY_HOST": "127.0.0.1",
                    "GATEWAY_PORT": str(port),
                },
            )
            pids = {"gateway": gateway.process.pid, "postgres": postgres.pid, "nats-server": nats_server.pid}
            yield f"http://127.0.0.1:{port}", {name: pid for name, pid in pids.items() if pid}, postgres.url
        finally:
            supervisor.stop_all(timeout=15)
