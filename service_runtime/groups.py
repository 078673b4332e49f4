"""Group writes the way Postgres groups commits: what arrives while a write runs goes in the next one.

Many small writes that arrive together (outbox confirmations, ledger rows, plans) cost a round
trip and a commit each when written one by one. ``Grouped`` hands them to one ``write`` call per
group instead: at most ``writers`` writes run at a time, items submitted meanwhile form the next
group (up to ``max_group`` items each), and each submitter gets its own item's result.

``linger_seconds`` holds a write back that long after it is due while its group is small (under a
quarter of ``max_group``), so a steady trickle of items (a few per millisecond) still forms
groups: for writes where a group costs a round trip and a commit but a few milliseconds cost
nothing. A group already that large goes at once: under a backlog, lingering would only idle the
writer. Without it, a write starts on the next turn of the loop.

``write`` returns one result per item, in order, or None when no item has one. A result that is
an exception is raised to that item's submitter alone (a plan refused for its own content fails
only itself). A ``write`` that raises is tried again for each item of its group alone, so an item
that makes its write fail (a value its table refuses) fails itself, not its group; an item whose
own write fails too raises that to its submitter, who retries it (after two such in a row, the
rest of the group fail with the second without a write: the write itself is failing). So
``write`` must be idempotent per item (all of ours are: ``ON CONFLICT DO NOTHING``, deletes by id,
plans unique per request).
"""

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar, cast

from service_runtime.metrics import GROUPED_WRITE_ITEMS

__all__ = ["Grouped"]

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class _Group(Generic[T, R]):
    items: list[T] = field(default_factory=list)
    waiting: list["asyncio.Future[R]"] = field(default_factory=list)

    def settle(self, results: Sequence[R | BaseException] | None) -> None:
        if results is not None and len(results) != len(self.items):
            raise AssertionError(f"a group write returned {len(results)} results for {len(self.items)} items")
        for index, future in enumerate(self.waiting):
            result = None if results is None else results[index]
            if future.done():
                continue
            if isinstance(result, BaseException):
                future.set_exception(result)
                # Retrieved here too, so an item whose caller gave up logs no "never retrieved".
                future.exception()
            else:
                future.set_result(cast(R, result))

    def fail(self, exc: BaseException) -> None:
        self.settle([exc] * len(self.items))

    def cancel(self) -> None:
        for future in self.waiting:
            future.cancel()


class Grouped(Generic[T, R]):
    def __init__(
        self,
        write: Callable[[list[T]], Awaitable[Sequence[R | BaseException] | None]],
        *,
        name: str,
        max_group: int = 500,
        writers: int = 1,
        linger_seconds: float = 0.0,
    ) -> None:
        self._write = write
        self._linger = linger_seconds
        self._sizes = GROUPED_WRITE_ITEMS.labels(name)
        self._max_group = max_group
        self._writers = writers
        self._forming: list[_Group[T, R]] = []
        self._running: set[asyncio.Task[None]] = set()

    async def submit(self, item: T) -> R:
        """Write ``item`` with its group; return its result, or raise its (or the group's) failure."""
        # Shielded: a caller that stops waiting must not cancel the write its neighbours wait for.
        return await asyncio.shield(self.join(item))

    def join(self, item: T) -> "asyncio.Future[R]":
        """Put ``item`` in the group forming now, without waiting: the item's outcome."""
        if not self._forming or len(self._forming[-1].items) >= self._max_group:
            self._forming.append(_Group())
        group = self._forming[-1]
        group.items.append(item)
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        group.waiting.append(future)
        if len(self._running) < min(self._writers, len(self._forming)):
            writer = asyncio.create_task(self._drain())
            self._running.add(writer)
            writer.add_done_callback(self._running.discard)
        return future

    async def drain(self) -> None:
        """Wait until every item handed over so far is written (or its write failed)."""
        while self._running:
            await asyncio.gather(*(asyncio.shield(writer) for writer in self._running), return_exceptions=True)

    async def _drain(self) -> None:
        while self._forming:
            # One turn of the loop first (or the linger, for a small group), so items submitted
            # meanwhile join in.
            small = len(self._forming[0].items) < max(1, self._max_group // 4)
            await asyncio.sleep(self._linger if small else 0)
            if not self._forming:  # another writer took it meanwhile
                return
            group = self._forming.pop(0)
            self._sizes.observe(len(group.items))
            try:
                results = await self._write(group.items)
            except asyncio.CancelledError:
                group.cancel()  # shutting down: its callers stop waiting too
                for waiting in self._forming:
                    waiting.cancel()
                self._forming.clear()
                raise
            except Exception as exc:
                if len(group.items) == 1:
                    group.fail(exc)
                else:
                    await self._write_alone(group)
            else:
                try:
                    group.settle(results)
                except AssertionError as exc:
                    group.fail(exc)

    async def _write_alone(self, group: _Group[T, R]) -> None:
        """A failed group's items written again, each in a write of its own: one item that fails
        its write (a value its table refuses) fails itself, not the items it was grouped with.
        Two failing in a row say the write itself fails (its database is away): the rest fail
        with it at once rather than each wait for its own failure."""
        failed_in_a_row = 0
        for index, (item, future) in enumerate(zip(group.items, group.waiting, strict=True)):
            alone = _Group[T, R]([item], [future])
            try:
                alone.settle(await self._write([item]))
            except asyncio.CancelledError:
                group.cancel()
                raise
            except Exception as exc:
                alone.fail(exc)
                failed_in_a_row += 1
                if failed_in_a_row == 2:
                    _Group[T, R](group.items[index + 1 :], group.waiting[index + 1 :]).fail(exc)
                    return
            else:
                failed_in_a_row = 0
