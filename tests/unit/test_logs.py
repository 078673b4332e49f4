"""Structured logs: one JSON object per line, naming the service and the request in hand."""

import ast
import asyncio
import contextvars
import io
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from service_runtime.logs import JsonFormatter, TextFormatter, bind_request_id, current_request_id, reason

# Where log lines are written: the runtime, the services, the simulator and the dev stack.
PACKAGES = ("contracts", "service_runtime", "services", "llm_simulator", "devstack")


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, Callable[[], list[str]]]]:
    """A logger writing JSON lines to a buffer, and a way to read the lines back."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter("planner"))
    logger = logging.getLogger(f"test.logs.{uuid.uuid4().hex}")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, lambda: buffer.getvalue().splitlines()
    logger.removeHandler(handler)


def _in_own_context(action: Callable[[], None]) -> None:
    # A bound request id lasts as long as its context: keep each test's binding to itself.
    contextvars.copy_context().run(action)


def test_a_record_is_one_line_of_json_naming_the_service_and_the_request(
    logged: tuple[logging.Logger, Callable[[], list[str]]],
) -> None:
    logger, lines = logged
    request_id = uuid.uuid4()

    def handle() -> None:
        bind_request_id(request_id)
        logger.info("planned %s in\n%d weeks", "a plan", 8)

    _in_own_context(handle)
    [line] = lines()
    record = json.loads(line)
    assert record["service"] == "planner"
    assert record["level"] == "INFO"
    assert record["logger"] == logger.name
    assert record["message"] == "planned a plan in\n8 weeks"
    assert record["request_id"] == str(request_id)
    assert record["timestamp"].endswith("Z")
    assert "trace_id" not in record  # no span is current


def test_a_record_outside_any_request_names_none(logged: tuple[logging.Logger, Callable[[], list[str]]]) -> None:
    logger, lines = logged
    _in_own_context(lambda: logger.warning("sweep: nothing to do"))
    record = json.loads(lines()[0])
    assert "request_id" not in record
    assert current_request_id() is None


def test_an_exception_is_one_field_and_extra_fields_are_kept(
    logged: tuple[logging.Logger, Callable[[], list[str]]],
) -> None:
    logger, lines = logged
    plan_id = uuid.uuid4()
    try:
        raise ValueError("no such exercise")
    except ValueError:
        logger.exception("could not store the plan", extra={"plan_id": plan_id, "attempt": 2})
    [line] = lines()
    record = json.loads(line)
    assert record["level"] == "ERROR"
    assert record["exception"].startswith("Traceback")
    assert "ValueError: no such exercise" in record["exception"]
    assert record["plan_id"] == str(plan_id)
    assert record["attempt"] == 2


def test_inside_a_span_a_line_names_its_trace(logged: tuple[logging.Logger, Callable[[], list[str]]]) -> None:
    logger, lines = logged
    context = SpanContext(
        trace_id=0x0AF7651916CD43DD8448EB211C80319C,
        span_id=0xB7AD6B7169203331,
        is_remote=False,
        trace_flags=TraceFlags(TraceFlags.SAMPLED),
    )
    with trace.use_span(NonRecordingSpan(context)):
        logger.info("calling the LLM")
    record = json.loads(lines()[0])
    assert record["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
    assert record["span_id"] == "b7ad6b7169203331"


async def test_concurrent_tasks_each_log_their_own_request(
    logged: tuple[logging.Logger, Callable[[], list[str]]],
) -> None:
    logger, lines = logged
    ids = [uuid.uuid4() for _ in range(5)]

    async def handle(request_id: uuid.UUID) -> None:
        bind_request_id(request_id)
        await asyncio.sleep(0.01)  # the others bind theirs meanwhile
        logger.info("handled %s", request_id)

    await asyncio.gather(*(asyncio.create_task(handle(i)) for i in ids))
    records = [json.loads(line) for line in lines()]
    assert len(records) == len(ids)
    assert all(r["message"] == f"handled {r['request_id']}" for r in records)


def test_the_text_format_is_one_readable_line_with_the_request() -> None:
    formatter = TextFormatter("gateway")
    record = logging.makeLogRecord({"name": "services.gateway.store", "levelname": "INFO", "msg": "accepted"})
    request_id = uuid.uuid4()

    def handle() -> str:
        bind_request_id(request_id)
        return formatter.format(record)

    text = contextvars.copy_context().run(handle)
    assert text.endswith(f"INFO gateway services.gateway.store: accepted [request_id={request_id}]")


def test_a_reason_names_the_exception_when_its_message_is_empty() -> None:
    assert reason(TimeoutError()) == "TimeoutError"
    assert reason(ValueError("the plan has no weeks")) == "the plan has no weeks"


_LOG_METHODS = frozenset({"debug", "info", "warning", "error", "exception", "critical"})


def _bare_exceptions_logged(path: Path) -> list[str]:
    """Log calls inside ``except ... as name:`` that pass ``name`` itself (``str()`` of it may be empty)."""
    found = []
    for handler in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(handler, ast.ExceptHandler) or handler.name is None:
            continue
        for call in ast.walk(handler):
            if not (
                isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in _LOG_METHODS
            ):
                continue
            joined = [v for a in call.args if isinstance(a, ast.JoinedStr) for v in a.values]
            values = [*call.args, *(v.value for v in joined if isinstance(v, ast.FormattedValue))]
            if any(isinstance(v, ast.Name) and v.id == handler.name for v in values):
                found.append(f"{path}:{call.lineno}")
    return found


def test_no_log_line_gives_an_exception_as_its_reason_unwrapped() -> None:
    root = Path(__file__).resolve().parents[2]
    sources = [path for package in PACKAGES for path in sorted((root / package).rglob("*.py"))]

    offenders = [where for path in sources for where in _bare_exceptions_logged(path)]

    assert sources
    assert offenders == [], "log reason(exc), not exc: an exception's message may be empty"
