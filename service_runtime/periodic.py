"""Background chores (the outbox relay, the sweeper) run every few seconds for a block's lifetime."""

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from service_runtime.logs import reason

log = logging.getLogger(__name__)


@asynccontextmanager
async def every(interval_seconds: float, chore: Callable[[], Awaitable[object]], *, name: str) -> AsyncIterator[None]:
    """Run ``chore`` every ``interval_seconds`` until the block exits; a failed round is logged
    and the next one runs as usual (the chores are idempotent and pick up where they left)."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(interval_seconds)
            try:
                await chore()
            except Exception as exc:
                log.warning("%s round failed: %s", name, reason(exc))

    task = asyncio.create_task(loop(), name=name)
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
