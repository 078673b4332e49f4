"""Cancelled requests: spend nothing more on them.

Two paths, because a cancel can land at any moment of a request's life:

* Every planner replica hears ``plan.cancelled`` as it is published (a plain NATS subscription)
  and stops a plan it is writing for that request at once; it also remembers the id for a while,
  for a delivery of the request that starts just after.
* One replica takes each ``plan.cancelled`` from a durable consumer and marks the request in a
  key-value bucket (``state.CancelledRequests``), so a replica that was down or not yet started
  when the cancel was published still skips the request when it is (re)delivered, and cancels a
  background response that a crashed replica left running.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager, suppress
from typing import Protocol, TypeVar

__all__ = ["Cancellations", "CancelledMarks", "unless_cancelled"]

log = logging.getLogger(__name__)

T = TypeVar("T")


class CancelledMarks(Protocol):
    """Durable marks on cancelled requests, shared by every replica."""

    async def is_marked(self, request_id: uuid.UUID) -> bool: ...

    async def mark(self, request_id: uuid.UUID) -> None: ...


class Cancellations:
    """The cancelled requests this process knows of, and the plans it is writing that a cancel stops."""

    def __init__(self, marks: CancelledMarks, *, remember_seconds: float = 600.0) -> None:
        self._marks = marks
        self._remember = remember_seconds
        self._running: dict[uuid.UUID, asyncio.Event] = {}
        self._recent: dict[uuid.UUID, float] = {}

    def heard(self, request_id: uuid.UUID) -> None:
        """A ``plan.cancelled`` was just published: stop the plan if it is being written here."""
        now = time.monotonic()
        self._recent = {rid: until for rid, until in self._recent.items() if until > now}
        self._recent[request_id] = now + self._remember
        if (stop := self._running.get(request_id)) is not None:
            log.info("request %s cancelled: stopping its plan", request_id)
            stop.set()

    async def mark(self, request_id: uuid.UUID) -> None:
        """Remember the cancel durably, for every replica and every later delivery."""
        await self._marks.mark(request_id)
        self.heard(request_id)

    @asynccontextmanager
    async def watching(self, request_id: uuid.UUID) -> AsyncIterator[asyncio.Event]:
        """An event that is set once ``request_id`` is cancelled (already set if it was)."""
        stop = asyncio.Event()
        self._running[request_id] = stop
        try:
            # Registered first, checked second: a cancel heard in between still sets ``stop``.
            if self._recent.get(request_id, 0.0) > time.monotonic() or await self._marks.is_marked(request_id):
                stop.set()
            yield stop
        finally:
            if self._running.get(request_id) is stop:
                del self._running[request_id]


async def unless_cancelled(stop: asyncio.Event, work: Awaitable[T]) -> T | None:
    """``work``'s result, or None if ``stop`` was set first (``work`` is then cancelled and awaited)."""
    task = asyncio.ensure_future(work)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
    except BaseException:
        # Shutdown: drop the work as is. In background mode the response keeps running and a
        # redelivery re-attaches to it; only a user's cancel abandons it.
        task.cancel()
        waiter.cancel()
        raise
    waiter.cancel()
    if task in done:
        return task.result()
    task.cancel()
    with suppress(asyncio.CancelledError):
        await task
    return None
