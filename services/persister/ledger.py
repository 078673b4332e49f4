"""The cost ledger: every paid LLM call as a row, each request's total, and a report over a period."""

import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import asyncpg

from contracts.events import LlmCallRecorded

__all__ = ["CostLine", "PostgresLedger", "cost_report"]

log = logging.getLogger(__name__)

_INSERT = """
INSERT INTO llm_calls (call_id, request_id, stage, model, outcome, prompt_tokens, completion_tokens,
                       cached_tokens, seconds, cost_usd, called_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (call_id) DO NOTHING
"""


class PostgresLedger:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(self, event: LlmCallRecorded) -> None:
        """Store the call once (a redelivery is a no-op) and add its cost to its request's total."""
        cost = Decimal(str(event.cost_usd))
        async with self._pool.acquire() as conn, conn.transaction():
            inserted = await conn.execute(
                _INSERT,
                event.call_id,
                event.request_id,
                event.stage,
                event.model,
                event.outcome,
                event.prompt_tokens,
                event.completion_tokens,
                event.cached_tokens,
                event.seconds,
                cost,
                event.occurred_at,
            )
            if inserted == "INSERT 0 1":
                # No row lock needed: an addition commutes with every other writer of the row.
                await conn.execute(
                    "UPDATE workout_plan_requests SET cost_usd = cost_usd + $2 WHERE id = $1", event.request_id, cost
                )


@dataclass(frozen=True)
class CostLine:
    stage: str
    model: str
    calls: int
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost_usd: Decimal


async def cost_report(conn: asyncpg.Connection, since: datetime, until: datetime) -> list[CostLine]:
    """Totals per stage and model of the calls made in [since, until)."""
    rows = await conn.fetch(
        "SELECT stage, model, count(*) AS calls, count(DISTINCT request_id) AS requests,"
        " sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens,"
        " sum(cached_tokens) AS cached_tokens, sum(cost_usd) AS cost_usd"
        " FROM llm_calls WHERE called_at >= $1 AND called_at < $2 GROUP BY stage, model ORDER BY stage, model",
        since,
        until,
    )
    return [
        CostLine(
            r["stage"],
            r["model"],
            r["calls"],
            r["requests"],
            r["prompt_tokens"],
            r["completion_tokens"],
            r["cached_tokens"],
            r["cost_usd"],
        )
        for r in rows
    ]
