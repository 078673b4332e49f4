"""One request, one trace: gateway, planner, profiler and persister spans linked through NATS headers,
and one request id on every service's JSON log lines.

A stack of its own, with tracing on (``OTEL_TRACES_EXPORTER=otlp``) and exporting to an OTLP/HTTP
receiver in this process; its own NATS and database, so the session's untraced stack never takes
its messages.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import httpx
import orjson
import pytest

from devstack import NatsServer
from tests.databases import fresh_database
from tests.e2e.conftest import E2E_ENV
from tests.e2e.test_pipeline import SEED_PROFILE, submit, wait_for_end
from tests.otlp_receiver import OtlpReceiver, ReceivedSpan
from tests.stack import ServiceStack

pytestmark = pytest.mark.e2e

FOUR = {"gateway", "planner", "profiler", "persister"}


@dataclass
class Traced:
    stack: ServiceStack
    receiver: OtlpReceiver


@pytest.fixture(scope="module")
async def traced(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Traced]:
    workdir = tmp_path_factory.mktemp("tracing")
    async with fresh_database(database_url, "tracing") as url:
        nats_server = NatsServer(workdir / "nats")
        receiver = OtlpReceiver()
        stack = ServiceStack(
            nats_url=nats_server.url,
            database_url=url,
            log_path=workdir / "services.log",
            env={
                **E2E_ENV,
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
                # Export within a tenth of a second rather than the default five.
                "OTEL_BSP_SCHEDULE_DELAY": "100",
                "LOG_FORMAT": "json",
            },
        )
        try:
            await asyncio.to_thread(nats_server.start)
            receiver.start()
            await asyncio.to_thread(stack.start)
            yield Traced(stack, receiver)
        finally:
            await asyncio.to_thread(stack.stop)
            receiver.stop()
            await asyncio.to_thread(nats_server.stop)


class Trace:
    """The spans of one trace, with the questions the test asks of them."""

    def __init__(self, spans: list[ReceivedSpan]) -> None:
        self.spans = spans
        self.by_id = {span.span_id: span for span in spans}

    @property
    def services(self) -> set[str]:
        return {span.service for span in self.spans}

    def find(self, service: str, kind: str, name: str | None = None) -> list[ReceivedSpan]:
        return [s for s in self.spans if s.service == service and s.kind == kind and (name is None or s.name == name)]

    def one(self, service: str, kind: str, name: str) -> ReceivedSpan:
        found = self.find(service, kind, name)
        assert found, f"no {kind} span {name!r} in {service}; have {self.describe()}"
        return found[0]

    def parent(self, span: ReceivedSpan) -> ReceivedSpan:
        assert span.parent_id in self.by_id, f"{span.name} ({span.service}) has no parent in the trace"
        return self.by_id[span.parent_id]

    def descends(self, span: ReceivedSpan, ancestor: ReceivedSpan) -> bool:
        seen = span
        while seen.parent_id is not None and seen.parent_id in self.by_id:
            seen = self.by_id[seen.parent_id]
            if seen.span_id == ancestor.span_id:
                return True
        return False

    def below(self, ancestor: ReceivedSpan, matches: Callable[[ReceivedSpan], bool]) -> list[ReceivedSpan]:
        return [s for s in self.spans if matches(s) and self.descends(s, ancestor)]

    def consumed_from(self, consumer: ReceivedSpan, publisher_service: str) -> ReceivedSpan:
        """The publisher's PRODUCER span that ``consumer`` continues (its parent, across NATS)."""
        producer = self.parent(consumer)
        assert (producer.service, producer.kind) == (publisher_service, "PRODUCER"), (consumer, producer)
        return producer

    def describe(self) -> str:
        return ", ".join(sorted({f"{s.service}:{s.kind}:{s.name}" for s in self.spans}))


async def _trace_of(receiver: OtlpReceiver, request_id: str, timeout: float = 20) -> Trace:
    """The trace whose gateway HTTP span names ``request_id``, once the persister's last commit is in."""
    async with asyncio.timeout(timeout):
        while True:
            spans = receiver.spans()
            roots = [
                s
                for s in spans
                if s.service == "gateway"
                and s.kind == "SERVER"
                and s.attributes.get("workout.request_id") == request_id
            ]
            if roots:
                trace = Trace([s for s in spans if s.trace_id == roots[0].trace_id])
                done = trace.find("persister", "PRODUCER", "plan.persisted publish")
                if trace.services >= FOUR and done:
                    return trace
            await asyncio.sleep(0.2)


def _is_commit(span: ReceivedSpan) -> bool:
    # asyncpg's transaction sends "COMMIT;", and the instrumentation names a span by its first word.
    return span.kind == "CLIENT" and span.name.rstrip(";") == "COMMIT"


def _json_lines(stack: ServiceStack) -> list[dict[str, object]]:
    """The services' log lines (``name | {...}`` in the stack's log), decoded; every one must be JSON."""
    lines = []
    for raw in stack.log_path.read_text(encoding="utf-8").splitlines():
        name, sep, text = raw.partition(" | ")
        if not sep or name.strip() not in {*FOUR, "simulator"} or not text.startswith("{"):
            continue
        line = orjson.loads(text)
        assert {"timestamp", "level", "service", "logger", "message"} <= line.keys(), line
        lines.append(line)
    return lines


async def test_one_request_is_one_trace_from_the_http_call_to_the_llm_and_the_commit(traced: Traced) -> None:
    stack = traced.stack
    user = uuid.uuid4()
    async with httpx.AsyncClient(timeout=30) as client:
        request_id = await submit(client, stack, SEED_PROFILE, user)
        snapshot = await wait_for_end(client, stack, request_id, user)
    assert snapshot["status"] == "completed", snapshot
    trace = await _trace_of(traced.receiver, request_id)

    # Gateway: the HTTP request, its accept step (one SQL statement, its own transaction), and the
    # publish of plan.requested inside it.
    http = trace.one("gateway", "SERVER", "POST /functions/v1/trigger-workout-plan")
    assert http.parent_id is None
    accepted = trace.below(http, lambda s: s.service == "gateway" and s.kind == "CLIENT" and s.name == "SELECT")
    assert accepted, trace.describe()

    # Planner: consumes what the gateway published inside the HTTP span, calls the LLM within.
    planning = trace.one("planner", "CONSUMER", "plan.requested process")
    assert trace.descends(trace.consumed_from(planning, "gateway"), http)
    assert planning.attributes["workout.request_id"] == request_id
    assert planning.attributes["workout.delivery.outcome"] == "acked"
    llm = trace.below(planning, lambda s: s.kind == "CLIENT" and s.name.startswith("chat "))
    assert llm, trace.describe()
    assert llm[0].attributes["gen_ai.usage.output_tokens"] > 0
    assert trace.below(llm[0], lambda s: s.kind == "CLIENT" and s.name == "POST"), trace.describe()

    # Persister: consumes the planner's plan, stores it, and asks for the profiles it lacks ...
    stored = trace.one("persister", "CONSUMER", "plan.generated process")
    assert trace.descends(trace.consumed_from(stored, "planner"), planning)

    # ... which the profiler consumes, calling the LLM.
    profiling = trace.find("profiler", "CONSUMER", "exercise.profile.needed process")
    assert profiling, trace.describe()
    for span in profiling:
        assert trace.descends(trace.consumed_from(span, "persister"), stored)
    assert any(trace.below(s, lambda c: c.name.startswith("chat ")) for s in profiling)

    # The persister joins the profiles, and commits.
    joined = trace.find("persister", "CONSUMER", "exercise.profiled process")
    assert joined, trace.describe()
    for span in joined:
        producer = trace.consumed_from(span, "profiler")
        assert any(trace.descends(producer, p) for p in profiling)
    persisting = [stored, *joined]
    assert any(trace.below(s, _is_commit) for s in persisting), trace.describe()

    # Logs: every service logged this request's work under its id, as JSON.
    logged = {str(line["service"]) for line in _json_lines(stack) if line.get("request_id") == request_id}
    assert logged >= FOUR, logged


async def test_probes_and_chores_start_no_traces(traced: Traced) -> None:
    """Readiness probes' and periodic chores' SQL is not a unit of work: no trace of its own."""
    async with httpx.AsyncClient(timeout=10) as client:
        for url in traced.stack.health_urls.values():
            await client.get(f"{url}/readyz")
    await asyncio.sleep(0.5)  # two export rounds
    orphans = [
        s for s in traced.receiver.spans() if s.parent_id is None and s.kind not in {"SERVER", "CONSUMER", "PRODUCER"}
    ]
    assert not orphans, orphans[:5]
    probes = [s for s in traced.receiver.spans() if s.kind == "SERVER" and "readyz" in s.name]
    assert not probes, probes[:5]
