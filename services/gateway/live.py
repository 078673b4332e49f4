"""Live status: one request's progress notices as server-sent events, from any gateway replica.

Notices come from the progress stream on NATS (``progress.<request_id>``), never from this
process's memory, so the replica that serves the stream need not be the one that took the
request. Each event's id is the notice's stream sequence number: a client that reconnects with
``Last-Event-ID`` gets what it missed. Without it, the stream starts with a snapshot from
Postgres, then every week shown so far, then the newest notice. Notices are best effort, so while
none arrives the stream re-reads the request row and ends on a terminal status either way.

Weeks (``week`` events, provisional until the request completes) are shown once each per version,
whatever the stream holds: a planner that restarts announces the weeks it had kept again, and the
stream is always read from the request's first notice, so a resumed client's weeks before its
``Last-Event-ID`` count as shown too.
"""

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol
from uuid import UUID

import nats.errors
import nats.js.errors
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
    "ShownWeeks",
    "Updates",
    "parse_last_event_id",
    "provisional_weeks",
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

    def follow(self, request_id: UUID) -> AbstractAsyncContextManager[Updates]:
        """Every notice of ``request_id``, from the first one stored, then each new one."""
        ...

    async def newest(self, request_id: UUID) -> int | None:
        """The sequence of the newest notice stored for ``request_id``, None when there is none."""
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

    async def newest(self, request_id: UUID) -> int | None:
        try:
            message = await self._jetstream().get_last_msg(WORKOUT_PROGRESS.name, progress_subject(request_id))
        except nats.js.errors.NotFoundError:
            return None
        return message.seq

    @asynccontextmanager
    async def follow(self, request_id: UUID) -> AsyncIterator[Updates]:
        js = self._jetstream()
        subject = progress_subject(request_id)
        # From the request's first notice (a few dozen at most): the weeks shown so far, and what a
        # resumed client already saw. The start is fixed when the consumer is created: no gap.
        config = ConsumerConfig(deliver_policy=DeliverPolicy.ALL)
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


class ShownWeeks:
    """The week versions a client has been shown, newest version per week kept."""

    def __init__(self) -> None:
        self.latest: dict[int, PlanProgress] = {}
        self._seen: set[tuple[int, int]] = set()

    def first_time(self, progress: PlanProgress) -> bool:
        """Record a week notice; whether this week version is new to the client."""
        assert progress.week is not None
        key = (progress.week.week, progress.week_version or 1)
        if key in self._seen:
            return False
        self._seen.add(key)
        current = self.latest.get(key[0])
        if current is None or (current.week_version or 1) < key[1]:
            self.latest[key[0]] = progress
        return True


async def status_events(
    feed: ProgressFeed, snapshot: Snapshot, request_id: UUID, *, last_event_id: int | None, recheck_seconds: float
) -> AsyncIterator[ServerSentEvent]:
    """The events of one request's live status, ending after its terminal status."""
    shown = ShownWeeks()
    async with feed.follow(request_id) as updates:
        past: int | None = None
        if last_event_id is None:
            # The stored past of a fresh start: status notices up to the newest stored one are not
            # sent (the snapshot says where the request stands), the newest and every later one are.
            past = await feed.newest(request_id)
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
            event = _event_for(notice, shown, last_event_id, past)
            if event is not None:
                yield event
                if event.event == "progress" and notice.progress.status in TERMINAL_STATUSES:
                    return


def _event_for(
    notice: Notice, shown: ShownWeeks, last_event_id: int | None, past: int | None
) -> ServerSentEvent | None:
    """What the client is sent for ``notice``, if anything: a week version once; a status notice
    unless the client saw it before it reconnected, or it is a fresh start's stored past (before
    ``past``, the newest notice stored when the stream started: the snapshot says where the request
    stands, the newest stored notice is still sent, and so is every one after it, however close
    together they come)."""
    progress = notice.progress
    seen_before = last_event_id is not None and notice.sequence <= last_event_id
    if progress.week is not None:
        new = shown.first_time(progress)
        if not new or seen_before:
            return None
        return ServerSentEvent(data=progress.model_dump_json(), event="week", id=str(notice.sequence))
    if seen_before or (past is not None and notice.sequence < past):
        return None
    return ServerSentEvent(data=progress.model_dump_json(), event="progress", id=str(notice.sequence))


async def provisional_weeks(feed: ProgressFeed, request_id: UUID, *, wait_seconds: float) -> list[PlanProgress]:
    """The newest version of each week shown so far, by week number: what the progress stream holds
    now (read up to its newest notice; a read that waits ``wait_seconds`` for one stops there)."""
    newest = await feed.newest(request_id)
    if newest is None:
        return []
    shown = ShownWeeks()
    async with feed.follow(request_id) as updates:
        while (notice := await updates.next(wait_seconds)) is not None:
            if notice.progress.week is not None:
                shown.first_time(notice.progress)
            if notice.sequence >= newest:
                break
    return [shown.latest[week] for week in sorted(shown.latest)]


def _snapshot_event(current: RequestSnapshot) -> ServerSentEvent:
    # No id: a client that reconnects before any notice starts over with a fresh snapshot.
    return ServerSentEvent(data=current.model_dump_json(), event="snapshot")
