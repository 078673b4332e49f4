"""Outbox confirmations in groups: one DELETE for every event JetStream acknowledged meanwhile.

Each accepted request's outbox row is deleted once its ``plan.requested`` is acknowledged. One
DELETE per request is a round trip and a commit each; the requests confirming at the same moment
share one ``DELETE ... WHERE id = ANY(...)`` instead, the way Postgres groups commits. At most one
DELETE runs at once; rows confirmed while it runs form the next group. Each DELETE also lingers
``LINGER_SECONDS`` first, so that at a moderate rate (a few hundred accepts a second, arriving one
at a time) a group still holds many rows: a row stays that much longer, which only the relay
could notice, and it waits seconds.

``later`` is what the accept path uses: the request is answered without waiting for its row to go
(a row left behind by a crash or a failed DELETE is only published again by the relay, whose
re-publish JetStream drops as a duplicate). ``confirm`` waits for its row's group; ``drain`` waits
for everything handed over so far, at shutdown.

The statement is ``service_runtime.outbox.confirm_many``; the groups are ``service_runtime.groups``.
"""

import asyncio
import logging

from service_runtime import outbox
from service_runtime.groups import Grouped
from service_runtime.logs import reason

__all__ = ["GroupedConfirmations"]

log = logging.getLogger(__name__)

LINGER_SECONDS = 0.05


class GroupedConfirmations:
    def __init__(self, pool: outbox.Executes) -> None:
        self._groups: Grouped[int, None] = Grouped(
            lambda ids: outbox.confirm_many(pool, ids), name="outbox_confirmations", linger_seconds=LINGER_SECONDS
        )

    async def confirm(self, outbox_id: int) -> None:
        """Delete ``outbox_id`` (with whatever else is being confirmed now); raise if the DELETE failed."""
        await self._groups.submit(outbox_id)

    def later(self, outbox_id: int) -> None:
        """Delete ``outbox_id`` with the next group, without waiting for it (a failure is logged)."""
        self._groups.join(outbox_id).add_done_callback(_log_failure)

    async def drain(self) -> None:
        """Wait until every row handed over so far is deleted (or its DELETE failed)."""
        await self._groups.drain()


def _log_failure(done: "asyncio.Future[None]") -> None:
    if not done.cancelled() and (exc := done.exception()) is not None:
        log.warning("outbox rows left for the relay: their DELETE failed (%s)", reason(exc))
