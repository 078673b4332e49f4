"""Group writes the way Postgres groups commits: what arrives while a write runs goes in the next one.

Many small writes that arrive together (outbox confirmations, ledger rows) cost a round trip and a
commit each when written one by one. ``Grouped`` hands them to one ``write`` call per group
instead: at most one write runs at a time, items submitted meanwhile form the next group (up to
``max_group`` items each), and each submitter learns the fate of its own group. A failed write
fails every item of its group; each caller then retries its own item, so ``write`` must be
idempotent per item (all of ours are: ``ON CONFLICT DO NOTHING``, deletes by id).
"""

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["Grouped"]

T = TypeVar("T")


@dataclass
class _Group(Generic[T]):
    items: list[T] = field(default_factory=list)
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Grouped(Generic[T]):
    def __init__(self, write: Callable[[list[T]], Awaitable[None]], *, max_group: int = 500) -> None:
        self._write = write
        self._max_group = max_group
        self._forming: list[_Group[T]] = []
        self._running: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> None:
        """Write ``item`` with its group; raise what the group's write raised."""
        # Shielded: a caller that stops waiting must not cancel the write its neighbours wait for.
        await asyncio.shield(self.join(item))

    def join(self, item: T) -> "asyncio.Future[None]":
        """Put ``item`` in the group forming now, without waiting: the group's outcome."""
        if not self._forming or len(self._forming[-1].items) >= self._max_group:
            self._forming.append(_Group())
        group = self._forming[-1]
        group.items.append(item)
        if self._running is None:
            self._running = asyncio.create_task(self._drain())
        return group.done

    async def drain(self) -> None:
        """Wait until every item handed over so far is written (or its write failed)."""
        while self._running is not None:
            await asyncio.shield(self._running)

    async def _drain(self) -> None:
        try:
            while self._forming:
                # One turn of the loop first, so items submitted at the same moment join in.
                await asyncio.sleep(0)
                group = self._forming.pop(0)
                try:
                    await self._write(group.items)
                except asyncio.CancelledError:
                    group.done.cancel()  # shutting down: its callers stop waiting too
                    for waiting in self._forming:
                        waiting.done.cancel()
                    self._forming.clear()
                    raise
                except Exception as exc:
                    group.done.set_exception(exc)
                    # Retrieved here too, so a group whose callers all gave up logs no "never retrieved".
                    group.done.exception()
                else:
                    group.done.set_result(None)
        finally:
            self._running = None
