"""``python -m bench`` (``make benchmarks``): run every benchmark section, then write the report.

Sections, each on its own freshly started processes, one after another so none disturbs another:
``gateway`` (bench.gateway_latency), ``pipeline`` (bench.pipeline, with the raw bound, the
profile and the CPU that section 6 prices), ``long_calls`` (bench.long_calls), ``celery``
(bench.celery_baseline) and ``persister`` (bench.persister_rate). Figures go to
``docs/benchmarks/results.json`` (``--only`` merges into it), the page to ``docs/benchmarks.md``
with charts in ``docs/benchmarks/``; ``docs/benchmarks/notes.md``, if present, is the
hand-written reading of the figures and is included as is; ``results-before.json``, if present,
is shown as "before".
"""

import argparse
import datetime
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import long_calls
from bench.celery_baseline import measure_celery, redis_server_binary
from bench.gateway_latency import measure_gateway
from bench.machine import busy_cores_since, cpu_jiffies, describe_machine, load_average, versions
from bench.persister_rate import measure_persister
from bench.pipeline import measure_pipeline
from bench.report import write_report
from tests.stack import REPO_ROOT

SECTIONS = ("gateway", "pipeline", "persister", "long_calls", "long_calls_ramped", "celery")


def _long_calls(calls: int, seconds: float, workdir: Path, ramp_seconds: float = 0.0) -> dict[str, Any]:
    name = f"long-calls-ramp-{ramp_seconds:g}"
    report = workdir / f"{name}.json"
    argv = ["--calls", str(calls), "--seconds", str(seconds), "--llm-mode", "responses_background"]
    argv += ["--ramp-seconds", str(ramp_seconds), "--report", str(report), "--workdir", str(workdir / name)]
    long_calls.main(argv)
    figures: dict[str, Any] = json.loads(report.read_text())
    return figures


def _gateway_both(*, rates: tuple[float, ...], seconds: float, workdir: Path) -> dict[str, Any]:
    """The gateway with the whole stack, and (under ``alone``) with only NATS and Postgres."""
    alone = measure_gateway(rates=rates, seconds=seconds, workdir=workdir / "alone", alone=True)
    return {**measure_gateway(rates=rates, seconds=seconds, workdir=workdir / "stack"), "alone": alone}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated subset of {', '.join(SECTIONS)}")
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run in ~4 minutes, not a report")
    parser.add_argument("--report-only", action="store_true", help="re-render the page from results.json")
    parser.add_argument("--docs", type=Path, default=REPO_ROOT / "docs", help="where benchmarks.md goes")
    parser.add_argument("--workdir", type=Path, default=None, help="keep logs and profiles here")
    args = parser.parse_args(argv)
    charts = args.docs / "benchmarks"
    charts.mkdir(parents=True, exist_ok=True)
    results_path = charts / "results.json"
    results: dict[str, Any] = json.loads(results_path.read_text()) if results_path.exists() else {}

    if not args.report_only:
        chosen = [name.strip() for name in args.only.split(",") if name.strip()]
        unknown = set(chosen) - set(SECTIONS)
        if unknown:
            parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
        workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench-")).resolve()
        quick = args.quick
        runs: dict[str, Callable[[], dict[str, Any]]] = {
            "gateway": lambda: _gateway_both(
                rates=(100, 500, 1000) if quick else (100, 250, 500, 1000, 1500),
                seconds=3 if quick else 6,
                workdir=workdir / "gateway",
            ),
            "pipeline": lambda: measure_pipeline(
                plans=300 if quick else 1200,
                warmup_plans=20 if quick else 50,
                profiled_plans=150 if quick else 500,
                raw_plans=100 if quick else 500,
                workdir=workdir / "pipeline",
            ),
            "long_calls": lambda: _long_calls(200 if quick else 2000, 20 if quick else 60, workdir),
            "long_calls_ramped": lambda: _long_calls(200 if quick else 2000, 20 if quick else 60, workdir, 20.0),
            "celery": lambda: measure_celery(
                concurrency=20 if quick else 100, seconds=20 if quick else 60, workdir=workdir / "celery"
            ),
            "persister": lambda: {
                **measure_persister(plans=1000 if quick else 3000, workdir=workdir / "persister"),
                "replicated": measure_persister(
                    plans=1000 if quick else 3000, workdir=workdir / "persister-2", replicas=2
                ),
            },
        }
        started = time.monotonic()
        results["meta"] = {
            "started": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": describe_machine(),
            "versions": versions(redis_server_binary()),
            "quick": quick,
        }
        for name in SECTIONS:
            if name in chosen:
                print(f"== {name}", flush=True)
                section_started, jiffies, load = time.monotonic(), cpu_jiffies(), load_average()
                results[name] = runs[name]()
                results[name]["section_seconds"] = round(time.monotonic() - section_started, 1)
                # The box may be shared: how busy it was, whoever kept it busy, sits beside each section.
                results[name]["machine_busy_cores"] = busy_cores_since(jiffies)
                results[name]["load_average_before_after"] = [load, load_average()]
        results["meta"]["duration_seconds"] = round(time.monotonic() - started, 1)
        results_path.write_text(json.dumps(results, indent=1) + "\n")
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)

    before_path = charts / "results-before.json"
    before = json.loads(before_path.read_text()) if before_path.exists() else None
    notes_path = charts / "notes.md"
    notes = notes_path.read_text() if notes_path.exists() else ""
    write_report(results, args.docs / "benchmarks.md", charts, before=before, notes=notes)
    print(f"wrote {args.docs / 'benchmarks.md'} and charts in {charts}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
