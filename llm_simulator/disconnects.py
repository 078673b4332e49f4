"""Stopping work when the client goes away, so an abandoned hang or slow generation costs nothing."""

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from starlette.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

T = TypeVar("T")


async def wait_for_disconnect(receive: Receive) -> None:
    """Return once the client has disconnected (the request body must already have been read)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(receive: Receive, work: Coroutine[Any, Any, T]) -> tuple[bool, T | None]:
    """Run ``work`` unless the client leaves first: ``(True, result)``, or ``(False, None)`` after
    cancelling ``work``."""
    working = asyncio.ensure_future(work)
    watching = asyncio.ensure_future(wait_for_disconnect(receive))
    try:
        await asyncio.wait({working, watching}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (working, watching):
            task.cancel()
        await asyncio.gather(working, watching, return_exceptions=True)
    if working.cancelled():
        return False, None
    return True, working.result()


class StreamUntilDisconnect(StreamingResponse):
    """A streaming response whose body generator is cancelled as soon as the client disconnects.

    Starlette only watches for disconnects on servers reporting ASGI spec < 2.4; on newer ones a
    silent generator (a hang) would run until its next write. This one always watches.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def stream() -> None:
            try:
                await self.stream_response(send)
            except OSError:
                # Spec 2.4 servers report a write to a closed connection this way.
                return

        await unless_disconnected(receive, stream())
