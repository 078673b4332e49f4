"""A message's lease, kept alive from a timer: nothing runs for a message handled within the beat.

JetStream redelivers a message not acknowledged within ``ack_wait``; a handler that may take
longer sends ``+WPI`` (in progress) now and then, which restarts that clock. Most messages are
handled in milliseconds, so a beat is a timer first (``loop.call_later``, cheaper than a task per
message) and becomes a task only when one is due. A lost beat is covered by the next one or, at
worst, by a redelivery (handlers are idempotent).
"""

import asyncio
import logging
from collections.abc import Awaitable

from nats.aio.msg import Msg

from service_runtime.logs import reason

__all__ = ["Lease", "quietly"]

log = logging.getLogger(__name__)


class Lease:
    """``+WPI`` for ``msg`` every ``every`` seconds until ``end``."""

    def __init__(self, msg: Msg, every: float) -> None:
        self._msg = msg
        self._every = every
        self._loop = asyncio.get_running_loop()
        self._signals: set[asyncio.Task[None]] = set()
        self._timer = self._loop.call_later(every, self._beat)

    def end(self) -> None:
        self._timer.cancel()

    def _beat(self) -> None:
        signal = self._loop.create_task(quietly(self._msg.in_progress()))
        self._signals.add(signal)
        signal.add_done_callback(self._signals.discard)
        self._timer = self._loop.call_later(self._every, self._beat)


async def quietly(action: Awaitable[None]) -> None:
    """Best-effort lease signals (a beat, a nak on release): a lost one is covered by the next beat
    or by redelivery."""
    try:
        await action
    except Exception as exc:
        log.debug("lease signal failed: %s", reason(exc))
