"""The cost ledger: every paid LLM call as a row, each request's total, and a report over a period."""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from contracts.events import LlmCallRecorded
from service_runtime.groups import Grouped
from services.persister.locks import lock_requests

__all__ = ["CostLine", "PostgresLedger", "cost_report", "insert_calls"]

log = logging.getLogger(__name__)

Connection = asyncpg.Connection | PoolConnectionProxy


_INSERT_AND_ADD = """
WITH new AS (
    INSERT INTO llm_calls (call_id, request_id, stage, model, outcome, prompt_tokens, completion_tokens,
                           cached_tokens, seconds, cost_usd, called_at, service_tier)
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::int[], $7::int[],
                         $8::int[], $9::float8[], $10::numeric[], $11::timestamptz[], $12::text[])
    ON CONFLICT (call_id) DO NOTHING
    RETURNING request_id, cost_usd
)
UPDATE workout_plan_requests r SET cost_usd = r.cost_usd + s.cost
FROM (SELECT request_id, sum(cost_usd) AS cost FROM new GROUP BY request_id) AS s
WHERE r.id = s.request_id
"""


class PostgresLedger:
    """Ledger rows in groups: the calls recorded while a group's transaction runs share the next
    one (``service_runtime.groups``), a plan's nine calls one commit instead of nine."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._groups: Grouped[LlmCallRecorded, None] = Grouped(self._write, name="ledger")

    async def record(self, event: LlmCallRecorded) -> None:
        """Store the call once (a redelivery is a no-op) and add its cost to its request's total."""
        await self._groups.submit(event)

    async def _write(self, events: list[LlmCallRecorded]) -> None:
        async with self._pool.acquire() as conn, conn.transaction():
            # In id order, so two replicas writing groups that share requests cannot deadlock.
            await lock_requests(conn, (e.request_id for e in events))
            await insert_calls(conn, events)


async def insert_calls(conn: Connection, events: Sequence[LlmCallRecorded]) -> None:
    """Store each call once (a repeat is a no-op) and add the new ones' cost to their requests'
    totals; the caller holds the requests' locks (taken in id order)."""
    if not events:
        return
    columns = list(
        zip(
            *(
                (
                    e.call_id,
                    e.request_id,
                    e.stage,
                    e.model,
                    e.outcome,
                    e.prompt_tokens,
                    e.completion_tokens,
                    e.cached_tokens,
                    e.seconds,
                    Decimal(str(e.cost_usd)),
                    e.occurred_at,
                    e.service_tier,
                )
                for e in events
            ),
            strict=True,
        )
    )
    await conn.execute(_INSERT_AND_ADD, *columns)


@dataclass(frozen=True)
class CostLine:
    stage: str
    model: str
    service_tier: str
    calls: int
    requests: int
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cost_usd: Decimal


async def cost_report(conn: asyncpg.Connection, since: datetime, until: datetime) -> list[CostLine]:
    """Totals per stage, model and service tier of the calls made in [since, until)."""
    rows = await conn.fetch(
        "SELECT stage, model, service_tier, count(*) AS calls, count(DISTINCT request_id) AS requests,"
        " sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens,"
        " sum(cached_tokens) AS cached_tokens, sum(cost_usd) AS cost_usd"
        " FROM llm_calls WHERE called_at >= $1 AND called_at < $2 GROUP BY stage, model, service_tier"
        " ORDER BY stage, model, service_tier",
        since,
        until,
    )
    return [
        CostLine(
            r["stage"],
            r["model"],
            r["service_tier"],
            r["calls"],
            r["requests"],
            r["prompt_tokens"],
            r["completion_tokens"],
            r["cached_tokens"],
            r["cost_usd"],
        )
        for r in rows
    ]
