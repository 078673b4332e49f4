"""Section 6: compute cost per plan from the CPU seconds the pipeline run measured.

The price is a stated assumption, not a measurement: AWS EC2 c6i.large, on demand, Linux,
us-east-1 ($0.085 per hour for 2 vCPUs), i.e. $0.0425 per vCPU-hour. CPU seconds are billed as
if every one were used (no idle reserve, no memory, no managed database or NATS markup), so the
figure is the compute floor of the design, to compare with the original system's hosted job
runner at about $0.005 per 300 s run (one plan). The LLM simulator's CPU is left out: it stands
in for OpenAI, whose tokens are billed separately (and the same) in both systems.
"""

from collections.abc import Mapping
from typing import Any

from contracts import roster

__all__ = ["ORIGINAL_USD_PER_PLAN", "VCPU_HOUR_USD", "cost_per_plan"]

VCPU_HOUR_USD = 0.085 / 2
VCPU_PRICE_SOURCE = "AWS EC2 c6i.large on demand, Linux, us-east-1: $0.085/h for 2 vCPUs"
ORIGINAL_USD_PER_PLAN = 0.005
COUNTED = (*roster.NAMES, "nats-server", "postgres")


def cost_per_plan(cpu_ms_per_plan: Mapping[str, float]) -> dict[str, Any]:
    """USD of compute per plan from each process's CPU milliseconds per plan."""
    counted = {name: ms for name, ms in cpu_ms_per_plan.items() if name in COUNTED}
    cpu_seconds = sum(counted.values()) / 1000
    usd = cpu_seconds / 3600 * VCPU_HOUR_USD
    return {
        "cpu_seconds_per_plan": round(cpu_seconds, 4),
        "counted": sorted(counted),
        "vcpu_hour_usd": VCPU_HOUR_USD,
        "price_source": VCPU_PRICE_SOURCE,
        "usd_per_plan": usd,
        "original_usd_per_plan": ORIGINAL_USD_PER_PLAN,
        "cheaper_than_original_x": round(ORIGINAL_USD_PER_PLAN / usd) if usd else None,
    }
