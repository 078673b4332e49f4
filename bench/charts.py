"""The report's PNG charts (matplotlib, files only)."""

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt

from bench.figures import LONG_CALL_RUNS, PROCESSES, Results, calls_per_gb, fmt, persister_bound

__all__ = ["chart_cpu", "chart_gateway", "chart_long_calls", "chart_throughput"]


def chart_gateway(results: Results, before: Results | None, out: Path) -> None:
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
        ax.bar_label(bars, labels=[fmt(v) for v in values], fontsize=7)
    ax.set_xticks(range(len(labels)), labels, fontsize=8)


def chart_throughput(results: Results, before: Results | None, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(8, 4))
    labels = ["pipeline (e2e)", "pipeline raw bound", "persister alone", "persister raw bound"]

    def values(data: Results) -> list[float]:
        pipeline, persister = data.get("pipeline", {}), data.get("persister", {})
        return [
            pipeline.get("measured", {}).get("plans_per_s", 0.0),
            pipeline.get("raw", {}).get("raw_bound_plans_per_s", 0.0),
            persister.get("plans_per_s", 0.0),
            persister_bound(data) or 0.0,
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


def chart_cpu(results: Results, before: Results | None, out: Path) -> None:
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


def chart_long_calls(results: Results, out: Path) -> None:
    celery = results.get("celery")
    runs = [(how, results[key]) for key, how in LONG_CALL_RUNS if key in results]
    if not runs or not celery:
        return
    fig, ax = plt.subplots(figsize=(8, 3.8))
    labels = [f"planner, {how}\n(RSS)" for how, _ in runs] + ["Celery prefork\n(PSS)", "Celery prefork\n(RSS)"]
    values = [calls_per_gb(run) for _, run in runs] + [celery["calls_per_gb_pss"], celery["calls_per_gb_rss"]]
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
