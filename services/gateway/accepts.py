"""Accepts in groups: the requests that arrive while one accept is being written share the next call.

Each accept is one call of ``accept_plan_request`` (migration 0012) on its own; the accepts that
arrive while a call runs go in the next call together, through ``accept_plan_requests`` (migration
0014): one round trip and one commit for the group, the users' locks taken first in one order,
each item checked and answered as if alone and in arrival order (two requests of one user in one
group count against that user's caps one after the other). ``service_runtime.groups`` forms the
groups: at most ``writers`` calls at once, up to ``per_write`` accepts each.

An outage fails every accept of its group (``Unavailable`` from the connection); any other
database error is retried accept by accept, so only the accept that causes it fails. The call runs
in the task that writes the group, so its span is in the trace of the request that started the
group; each request's own trace context still goes into its outbox row.

``linger_seconds`` holds a small group's call back that long, so that accepts arriving one at a
time (a few hundred a second) still share calls. Alone on NATS and Postgres at 500 accepts/s,
3 ms took the CPU per accept (gateway + Postgres + nats-server) from 2.15 to 1.6 ms and the p99
from 11 to 13 ms (docs/benchmarks.md). A group of a quarter of ``per_write`` or more goes at once,
so under a backlog nothing waits.
"""

# Deferred annotations: asyncpg's Record is generic only in its type stubs.
from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from itertools import groupby
from operator import attrgetter
from typing import TypeAlias

import asyncpg

from contracts.events import PlanRequested
from service_runtime.groups import Grouped
from service_runtime.logs import reason
from service_runtime.tracing import current_traceparent
from services.gateway.repository import Admission, Limits, PriorRequest

__all__ = ["GroupedAccepts", "admission_of"]

_Connection: TypeAlias = "asyncpg.pool.PoolConnectionProxy[asyncpg.Record]"

log = logging.getLogger(__name__)

# One accept (migration 0012): its own transaction, committed when it returns; the user's lock is
# held until then, and each check inside sees what the lock's previous holder committed.
_ACCEPT = "SELECT * FROM accept_plan_request($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
# Many in one call (migration 0014): arrays of the items' fields, then the limits they share.
_ACCEPT_MANY = "SELECT * FROM accept_plan_requests($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"


@dataclass(frozen=True)
class _Accept:
    """One accept waiting for its group's call, with the trace context of its own request."""

    event: PlanRequested
    payload: str
    idempotency_key: str | None
    limits: Limits
    traceparent: str | None


class GroupedAccepts:
    def __init__(
        self,
        connection: Callable[[], AbstractAsyncContextManager[_Connection]],
        *,
        writers: int,
        per_write: int,
        linger_seconds: float = 0.0,
    ) -> None:
        self._connection = connection
        self._groups: Grouped[_Accept, Admission] = Grouped(
            self._accept_group, name="accepts", max_group=per_write, writers=writers, linger_seconds=linger_seconds
        )

    async def accept(
        self, event: PlanRequested, payload: str, idempotency_key: str | None, limits: Limits
    ) -> Admission:
        """``RequestRepository.accept``, written with the accepts that arrive meanwhile."""
        return await self._groups.submit(_Accept(event, payload, idempotency_key, limits, current_traceparent()))

    async def _accept_group(self, items: list[_Accept]) -> list[Admission | BaseException]:
        """Each item's admission, in order. An outage fails the whole group (``Unavailable``); any
        other database error is retried item by item, so only the item that causes it fails."""
        admissions: list[Admission | BaseException] = []
        # One call per run of items with the same limits (the gateway has one set: one call).
        for limits, run in groupby(items, key=attrgetter("limits")):
            batch = list(run)
            try:
                admissions.extend(await self._write(batch, limits))
            except asyncpg.PostgresError as exc:
                if len(batch) > 1:
                    log.warning("%d accepts written together failed; each alone now: %s", len(batch), reason(exc))
                for item in batch:
                    try:
                        admissions.extend(await self._write([item], limits))
                    except asyncpg.PostgresError as alone:
                        admissions.append(alone)
        return admissions

    async def _write(self, items: list[_Accept], limits: Limits) -> list[Admission]:
        shared = (
            limits.max_active,
            limits.max_per_day,
            limits.user_budget_usd,
            limits.global_budget_usd,
            limits.reserve_usd,
        )
        async with self._connection() as conn:
            if len(items) == 1:
                item = items[0]
                event = item.event
                row = await conn.fetchrow(
                    _ACCEPT,
                    event.request_id,
                    event.user_id,
                    event.user_profile,
                    event.system_prompt,
                    item.idempotency_key,
                    *shared,
                    event.subject,
                    item.payload,
                    item.traceparent,
                )
                assert row is not None  # the function always returns one row
                return [admission_of(row)]
            rows = await conn.fetch(
                _ACCEPT_MANY,
                [item.event.request_id for item in items],
                [item.event.user_id for item in items],
                [item.event.user_profile for item in items],
                [item.event.system_prompt for item in items],
                [item.idempotency_key for item in items],
                [item.payload for item in items],
                [item.traceparent for item in items],
                *shared,
                items[0].event.subject,
            )
        by_item = {row["item"]: row for row in rows}
        assert sorted(by_item) == list(range(1, len(items) + 1))  # the function answers each item once
        return [admission_of(by_item[index]) for index in range(1, len(items) + 1)]


def admission_of(row: asyncpg.Record) -> Admission:
    """An accept step's reply row (0012's columns) as an ``Admission``."""
    outcome = row["outcome"]
    prior = None
    if outcome in ("existing", "busy"):
        prior = PriorRequest(row["request_id"], row["status"], row["user_profile"] or "", row["system_prompt"])
    wait = row["wait"]
    return Admission(
        outcome=outcome,
        prior=prior,
        spent_usd=row["spent"],
        active=row["active"],
        wait_seconds=None if wait is None else float(wait),
        outbox_id=row["outbox_id"],
    )
