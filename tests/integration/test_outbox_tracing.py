"""An event the outbox relay publishes late still continues the trace of the request that staged it."""

import uuid

import asyncpg
import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from contracts.events import Event, PlanRequested
from service_runtime import outbox

pytestmark = pytest.mark.integration


class ContextRecordingPublisher:
    """Records, per request, the span context current when its event was published."""

    def __init__(self) -> None:
        self.parents: dict[uuid.UUID, SpanContext] = {}

    async def publish(self, event: Event) -> None:
        self.parents[event.request_id] = trace.get_current_span().get_span_context()


async def _stage(pool: asyncpg.Pool, event: Event) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await outbox.stage(conn, event)


async def test_a_relayed_event_continues_the_trace_that_staged_it(pool: asyncpg.Pool) -> None:
    request = SpanContext(
        trace_id=uuid.uuid4().int, span_id=uuid.uuid4().int >> 64, is_remote=False, trace_flags=TraceFlags(1)
    )
    traced = PlanRequested(request_id=uuid.uuid4(), user_id=uuid.uuid4(), user_profile="3x per week")
    untraced = PlanRequested(request_id=uuid.uuid4(), user_id=uuid.uuid4(), user_profile="3x per week")
    with trace.use_span(NonRecordingSpan(request)):
        await _stage(pool, traced)
    await _stage(pool, untraced)

    publisher = ContextRecordingPublisher()
    await outbox.relay_once(pool, publisher, older_than_seconds=0, batch=10_000)

    parent = publisher.parents[traced.request_id]
    assert (parent.trace_id, parent.span_id) == (request.trace_id, request.span_id)
    assert not publisher.parents[untraced.request_id].is_valid
