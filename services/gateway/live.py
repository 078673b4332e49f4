"""Live status: one request's progress notices as server-sent events, from any gateway replica.

Notices come from the progress stream on NATS (``progress.<request_id>``), never from this
process's memory, so the replica that serves the stream need not be the one that took the
request. Each event's id is the notice's stream sequence number: a client that reconnects with
``Last-Event-ID`` gets what it missed. Without it, the stream starts with a snapshot from
Postgres. Notices are best effort, so while none arrives the stream re-reads the request row
and ends on a terminal status either way.
"""

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

import nats.errors
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, DeliverPolicy
from pydantic import ValidationError
from sse_starlette import ServerSentEvent

from contracts.progress import TERMINAL_STATUSES, PlanProgress
from contracts.streams import WORKOUT_PROGRESS
from service_runtime.bus import progress_subject
from service_runtime.logs import reason
from services.gateway.views import RequestSnapshot

__all__ = [
    "LAST_EVENT_ID_PATTERN",
    "InvalidLastEventId",
    "JetStreamProgressFeed",
    "Notice",
    "ProgressFeed",
    "Updates",
    "parse_last_event_id",
    "status_events",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Notice:
    """A progress notice and its stream sequence number (the SSE event id)."""

    sequence: int
    progress: PlanProgress


class Updates(Protocol):
    """An open subscription to one request's notices."""

    async def next(self, timeout_seconds: float) -> Notice | None:
        """The next notice, or None when none arrived within ``timeout_seconds``."""
        ...


class ProgressFeed(Protocol):
    """Port to the progress notices."""

    def follow(self, request_id: UUID, *, after: int | None) -> AbstractAsyncContextManager[Updates]:
        """Notices for ``request_id`` with sequence > ``after``; with ``after=None``, the newest one
        stored (if any) and every later one."""
        ...


class _JetStreamUpdates:
    def __init__(self, subscription: "nats.js.JetStreamContext.PushSubscription") -> None:
        self._subscription = subscription

    async def next(self, timeout_seconds: float) -> Notice | None:
        while True:
            try:
                message = await self._subscription.next_msg(timeout=timeout_seconds)
            except nats.errors.TimeoutError:
                return None
            try:
                progress = PlanProgress.model_validate_json(message.data)
            except ValidationError:
                log.warning("skipping an unreadable progress notice on %s", message.subject)
                continue
            return Notice(message.metadata.sequence.stream, progress)


class JetStreamProgressFeed:
    """``ProgressFeed`` on an ephemeral, ordered JetStream consumer per open stream."""

    def __init__(self, jetstream: Callable[[], JetStreamContext]) -> None:
        # A callable: the bus's JetStream context is only there once the broker is connected.
        self._jetstream = jetstream

    @asynccontextmanager
    async def follow(self, request_id: UUID, *, after: int | None) -> AsyncIterator[Updates]:
        js = self._jetstream()
        subject = progress_subject(request_id)
        # A fresh start gets the newest notice stored (it carries what the snapshot cannot, such as
        # the planner's "generating") and every later one; a resume, everything after its last id.
        # Either way the consumer's start is fixed when it is created: nothing falls into a gap.
        config = (
            ConsumerConfig(deliver_policy=DeliverPolicy.LAST_PER_SUBJECT)
            if after is None
            else ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=after + 1)
        )
        subscription = await js.subscribe(subject, stream=WORKOUT_PROGRESS.name, ordered_consumer=True, config=config)
        try:
            yield _JetStreamUpdates(subscription)
        finally:
            try:
                await subscription.unsubscribe()
            except Exception as exc:  # the connection may be gone; the consumer is ephemeral anyway
                log.debug("unsubscribing from %s: %s", subject, reason(exc))


# Our event ids are JetStream stream sequences. 18 ASCII digits hold every one a stream reaches in
# practice (10^18 notices) and keep a resume's start (id + 1) inside what JetStream accepts
# (2^63 - 1), so a schema-valid header can never fail the stream after its 200 went out.
LAST_EVENT_ID_PATTERN = r"^[0-9]{0,18}$"
_LAST_EVENT_ID = re.compile(LAST_EVENT_ID_PATTERN)


class InvalidLastEventId(ValueError):
    """A ``Last-Event-ID`` that is not one of our event ids (up to 18 ASCII digits)."""


def parse_last_event_id(value: str | None) -> int | None:
    """The stream sequence a reconnecting client last saw, or None for a fresh start (no header,
    or an empty one); ``InvalidLastEventId`` for anything that is not one of our ids.

    Strict on purpose: ``str.isdigit`` accepts ``"²"``, which ``int`` refuses, and a number past
    the stream's range would only fail once the stream's 200 is already out.
    """
    text = (value or "").strip(" \t")
    if not text:
        return None
    if _LAST_EVENT_ID.fullmatch(text) is None:
        raise InvalidLastEventId("Last-Event-ID must be an event id of this stream: up to 18 ASCII digits")
    return int(text)


Snapshot = Callable[[], Awaitable[RequestSnapshot | None]]


async def status_events(
    feed: ProgressFeed, snapshot: Snapshot, request_id: UUID, *, last_event_id: int | None, recheck_seconds: float
) -> AsyncIterator[ServerSentEvent]:
    """The events of one request's live status, ending after its terminal status."""
    async with feed.follow(request_id, after=last_event_id) as updates:
        if last_event_id is None:
            # Read after subscribing: a change that lands meanwhile shows up as a notice too.
            current = await snapshot()
            if current is None:
                return
            yield _snapshot_event(current)
            if current.status in TERMINAL_STATUSES:
                return
        while True:
            notice = await updates.next(recheck_seconds)
            if notice is None:
                current = await snapshot()
                if current is None:
                    return
                if current.status in TERMINAL_STATUSES:
                    yield _snapshot_event(current)
                    return
                continue
            yield ServerSentEvent(data=notice.progress.model_dump_json(), event="progress", id=str(notice.sequence))
            if notice.progress.status in TERMINAL_STATUSES:
                return


def _snapshot_event(current: RequestSnapshot) -> ServerSentEvent:
    # No id: a client that reconnects before any notice starts over with a fresh snapshot.
    return ServerSentEvent(data=current.model_dump_json(), event="snapshot")
