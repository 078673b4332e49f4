"""Plans compared by what wrote them: quality scores and cost per prompt version and model.

``python -m services.persister quality [HOURS]`` prints it: for each (prompt version, model) of the
complete plans stored in the window, how many, their mean quality scores (``workout_plans.quality``,
services/planner/scores.py) and their requests' mean LLM cost (the ledger's ``cost_usd``). An
experiment (``PLANNER_EXPERIMENT``) is read here variant by variant.
"""

from dataclasses import dataclass
from datetime import datetime

import asyncpg

__all__ = ["VariantLine", "variant_report"]

_PLANS = """
SELECT p.prompt_version, p.model, count(*) AS plans, avg(r.cost_usd)::float8 AS cost_usd
FROM workout_plans p JOIN workout_plan_requests r ON r.id = p.request_id
WHERE p.assembly = 'complete' AND p.created_at >= $1 AND p.created_at < $2
GROUP BY p.prompt_version, p.model
"""

_SCORES = """
SELECT p.prompt_version, p.model, q.key AS dimension, avg(q.value::float8) AS mean
FROM workout_plans p, jsonb_each_text(p.quality) AS q
WHERE p.assembly = 'complete' AND p.created_at >= $1 AND p.created_at < $2
GROUP BY p.prompt_version, p.model, q.key
"""


@dataclass(frozen=True)
class VariantLine:
    prompt_version: str
    model: str
    plans: int
    cost_usd: float | None  # mean per plan; None when no request has a cost yet
    scores: dict[str, float]  # mean per dimension; empty for plans stored before scores were kept


async def variant_report(conn: asyncpg.Connection, since: datetime, until: datetime) -> list[VariantLine]:
    """Per prompt version and model, the complete plans stored in [since, until), in name order."""
    scores: dict[tuple[str, str], dict[str, float]] = {}
    for row in await conn.fetch(_SCORES, since, until):
        scores.setdefault((row["prompt_version"], row["model"]), {})[row["dimension"]] = round(row["mean"], 3)
    lines = [
        VariantLine(
            row["prompt_version"] or "",
            row["model"] or "",
            row["plans"],
            row["cost_usd"],
            scores.get((row["prompt_version"], row["model"]), {}),
        )
        for row in await conn.fetch(_PLANS, since, until)
    ]
    return sorted(lines, key=lambda line: (line.prompt_version, line.model))
