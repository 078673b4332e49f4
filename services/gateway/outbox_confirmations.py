"""Outbox confirmations in groups: one DELETE for every event JetStream acknowledged meanwhile.

Each accepted request's outbox row is deleted once its ``plan.requested`` is acknowledged. One
DELETE per request is a round trip and a commit each; under load the requests confirming at the
same moment share one ``DELETE ... WHERE id = ANY(...)`` instead, the way Postgres groups commits.
A caller still waits until its own row is gone, so nothing changes for it but the cost: at one
request at a time a group is that one row. At most one DELETE runs at once; rows confirmed while
it runs form the next group.

The statement is ``service_runtime.outbox.confirm_many``; this module only decides the groups.
"""

import asyncio
from dataclasses import dataclass, field

from service_runtime import outbox

__all__ = ["GroupedConfirmations"]


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
        group = self._forming
        if group is None:
            group = self._forming = _Group()
            if self._running is None:
                self._running = asyncio.create_task(self._drain())
        group.ids.append(outbox_id)
        # Shielded: a caller that stops waiting must not cancel the DELETE its neighbours wait for.
        await asyncio.shield(group.done)

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
