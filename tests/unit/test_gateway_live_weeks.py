"""The live stream's weeks over an in-memory progress feed: each week version once, in stream order,
on a fresh start, a resume, and when a restarted planner announces its kept weeks again."""

import json
import random
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

from sse_starlette import ServerSentEvent

from contracts.progress import PlanProgress
from llm_simulator.intent import read_intent
from llm_simulator.plans import write_plan
from services.gateway.live import Notice, provisional_weeks, status_events
from services.gateway.views import RequestSnapshot

PLAN = write_plan(read_intent("3x per week, full gym", ""), random.Random(1))
REQUEST = uuid.uuid4()


def status(stage: str, status_: str = "processing") -> PlanProgress:
    return PlanProgress(request_id=REQUEST, status=status_, stage=stage)  # type: ignore[arg-type]


def week(number: int, version: int = 1) -> PlanProgress:
    return PlanProgress(
        request_id=REQUEST,
        status="processing",
        stage="generating",
        weeks_done=number,
        week=PLAN.weeks[number - 1],
        week_version=version,
    )


class Feed:
    """The stream of one request: a list of notices, each with its sequence number."""

    def __init__(self, notices: list[PlanProgress]) -> None:
        self.notices = list(notices)

    async def newest(self, request_id: uuid.UUID) -> int | None:
        return len(self.notices) or None

    @asynccontextmanager
    async def follow(self, request_id: uuid.UUID) -> AsyncIterator["Updates"]:
        yield Updates(self)


class Updates:
    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self.read = 0

    async def next(self, timeout_seconds: float) -> Notice | None:
        if self.read >= len(self.feed.notices):
            return None
        self.read += 1
        return Notice(self.read, self.feed.notices[self.read - 1])


def snapshot_of(state: str) -> RequestSnapshot:
    now = datetime.now(UTC)
    return RequestSnapshot(
        request_id=REQUEST,
        status=state,  # type: ignore[arg-type]
        stage="generating" if state == "processing" else state,
        error=None,
        plan_id=None,
        created_at=now,
        updated_at=now,
        completed_at=None,
    )


async def events(feed: Feed, *, last_event_id: int | None, final: str = "completed") -> list[ServerSentEvent]:
    async def snapshot() -> RequestSnapshot:
        # Processing while the stored notices last, then what the request ended as.
        return snapshot_of("processing" if last_event_id is None and not seen else final)

    seen: list[ServerSentEvent] = []
    async for event in status_events(feed, snapshot, REQUEST, last_event_id=last_event_id, recheck_seconds=0):
        seen.append(event)
    return seen


def shown(sent: list[ServerSentEvent]) -> list[tuple[str, object]]:
    """(event, what it says): a week by (number, version), a status by stage, a snapshot by status."""
    out: list[tuple[str, object]] = []
    for event in sent:
        data = json.loads(str(event.data))
        if event.event == "week":
            out.append(("week", (data["week"]["week"], data["week_version"])))
        elif event.event == "progress":
            out.append(("progress", data["stage"]))
        else:
            out.append((str(event.event), data["status"]))
    return out


# A planner that wrote weeks 1 and 3, restarted, announced them again from its kept parts, then
# wrote the rest; the weeks did not fit together, so week 2 was written again (version 2).
STREAM = [
    status("queued"),
    status("generating"),
    week(1),
    week(3),
    week(1),  # the restarted planner, after the duplicate window
    week(3),
    week(2),
    *(week(n) for n in range(4, 9)),
    week(2, version=2),
    status("generated"),
    status("completed", "completed"),
]


async def test_a_fresh_stream_shows_each_week_version_once_then_the_newest_status() -> None:
    sent = shown(await events(Feed(STREAM), last_event_id=None))

    assert sent == [
        ("snapshot", "processing"),
        ("week", (1, 1)),
        ("week", (3, 1)),
        ("week", (2, 1)),
        *(("week", (n, 1)) for n in range(4, 9)),
        ("week", (2, 2)),
        ("progress", "completed"),
    ]


class LiveFeed(Feed):
    """A stream that held ``stored`` notices when the client started; the rest came after."""

    def __init__(self, notices: list[PlanProgress], stored: int) -> None:
        super().__init__(notices)
        self.stored = stored

    async def newest(self, request_id: uuid.UUID) -> int | None:
        return self.stored or None


async def test_notices_after_a_fresh_start_are_each_sent_however_close_together_they_come() -> None:
    # Queued and generating were stored before the client came; the rest landed at once after.
    feed = LiveFeed([status("queued"), status("generating"), status("generated"), status("completed", "completed")], 2)

    sent = shown(await events(feed, last_event_id=None))

    assert sent == [
        ("snapshot", "processing"),
        ("progress", "generating"),
        ("progress", "generated"),
        ("progress", "completed"),
    ]


async def test_a_resumed_stream_sends_only_what_came_after_and_no_week_twice() -> None:
    # The client saw up to the first announcement of week 3 (sequence 4), then lost its connection.
    sent = await events(Feed(STREAM), last_event_id=4)

    assert shown(sent) == [
        ("week", (2, 1)),
        *(("week", (n, 1)) for n in range(4, 9)),
        ("week", (2, 2)),
        ("progress", "generated"),
        ("progress", "completed"),
    ]
    # Ids are the notices' sequences, so the next resume starts where this one ended.
    assert [int(str(e.id)) for e in sent] == [7, 8, 9, 10, 11, 12, 13, 14, 15]


async def test_resuming_at_every_point_adds_up_to_every_week_version_and_the_end_exactly_once() -> None:
    for cut in range(1, len(STREAM)):
        before = [e for e in await events(Feed(STREAM[:cut]), last_event_id=None) if e.event != "snapshot"]
        last = max((int(str(e.id)) for e in before), default=None)
        after = await events(Feed(STREAM), last_event_id=last)
        weeks = [w for kind, w in shown(before + after) if kind == "week"]
        assert sorted(weeks) == sorted({*((n, 1) for n in range(1, 9)), (2, 2)}), cut  # type: ignore[type-var]
        assert len(weeks) == 9, cut
        assert shown(after)[-1] == ("progress", "completed"), cut


async def test_the_weeks_read_through_the_api_are_the_newest_version_of_each() -> None:
    weeks = await provisional_weeks(Feed(STREAM), REQUEST, wait_seconds=0)

    assert [(w.week.week, w.week_version) for w in weeks if w.week] == [(1, 1), (2, 2), *((n, 1) for n in range(3, 9))]
    assert await provisional_weeks(Feed([]), REQUEST, wait_seconds=0) == []
