"""Outbox confirmations in groups: one DELETE for every event JetStream acknowledged meanwhile.

Each accepted request's outbox row is deleted once its ``plan.requested`` is acknowledged. One
DELETE per request is a round trip and a commit each; the requests confirming at the same moment
share one ``DELETE ... WHERE id = ANY(...)`` instead, the way Postgres groups commits. At most one
DELETE runs at once; rows confirmed while it runs form the next group.

``later`` is what the accept path uses: the request is answered without waiting for its row to go
(a row left behind by a crash or a failed DELETE is only published again by the relay, whose
re-publish JetStream drops as a duplicate). ``confirm`` waits for its row's group; ``drain`` waits
for everything handed over so far, at shutdown.

The statement is ``service_runtime.outbox.confirm_many``; this module only decides the groups.
"""

import asyncio
import logging
from dataclasses import dataclass, field

from service_runtime import outbox

__all__ = ["GroupedConfirmations"]

log = logging.getLogger(__name__)


@dataclass
class _Group:
    ids: list[int] = field(default_factory=list)
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class GroupedConfirmations:
    def __init__(self, pool: outbox.Executes) -> None:
        self._pool = pool
        self._forming: _Group | None = None
        self._running: asyncio.Task[None] | None = None

    async def confirm(self, outbox_id: int) -> None:
        """Delete ``outbox_id`` (with whatever else is being confirmed now); raise if the DELETE failed."""
        # Shielded: a caller that stops waiting must not cancel the DELETE its neighbours wait for.
        await asyncio.shield(self._join(outbox_id).done)

    def later(self, outbox_id: int) -> None:
        """Delete ``outbox_id`` with the next group, without waiting for it (a failure is logged)."""
        self._join(outbox_id).done.add_done_callback(_log_failure)

    async def drain(self) -> None:
        """Wait until every row handed over so far is deleted (or its DELETE failed)."""
        while self._running is not None:
            await asyncio.shield(self._running)

    def _join(self, outbox_id: int) -> _Group:
        group = self._forming
        if group is None:
            group = self._forming = _Group()
            if self._running is None:
                self._running = asyncio.create_task(self._drain())
        group.ids.append(outbox_id)
        return group

    async def _drain(self) -> None:
        try:
            while self._forming is not None:
                # One turn of the loop first, so requests confirming at the same moment join in.
                await asyncio.sleep(0)
                group, self._forming = self._forming, None
                try:
                    await outbox.confirm_many(self._pool, group.ids)
                except asyncio.CancelledError:
                    group.done.cancel()  # shutting down: its callers stop waiting too
                    raise
                except Exception as exc:
                    group.done.set_exception(exc)
                    # Retrieved here too, so a group whose callers all gave up logs no "never retrieved".
                    group.done.exception()
                else:
                    group.done.set_result(None)
        finally:
            self._running = None


def _log_failure(done: "asyncio.Future[None]") -> None:
    if not done.cancelled() and (exc := done.exception()) is not None:
        log.warning("outbox rows left for the relay: their DELETE failed (%s)", exc)
