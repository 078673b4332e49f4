"""Process-wide logging, configured once by the composition root: one JSON object per line.

Each line names the ``service``, and, while the code is handling a request, its ``request_id``: the
consumer binds it when an event is delivered, the gateway when a route has one, so nothing passes
it around. With tracing on, lines logged inside a span carry its ``trace_id`` and ``span_id`` too.
``LOG_FORMAT=text`` gives one human-readable line per record instead (``make run`` uses it).
"""

import logging
import sys
import time
import traceback
from contextvars import ContextVar
from typing import Any, Literal
from uuid import UUID

import orjson
from opentelemetry import trace

__all__ = [
    "JsonFormatter",
    "LogFormat",
    "TextFormatter",
    "bind_request_id",
    "configure_logging",
    "current_request_id",
    "reason",
]

LogFormat = Literal["json", "text"]

# Set per delivered message (each runs in its own task) or per HTTP request (likewise), so a value
# never outlives the work it names.
_request_id: ContextVar[str | None] = ContextVar("request_id", default=None)

# The attributes every LogRecord has; anything else on a record came from ``extra=`` and is logged too
# (but uvicorn's ``color_message``, its message again with terminal colours).
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName", "color_message"}

# The span attribute that names the request, so a trace can be found from a request id.
REQUEST_ID_ATTRIBUTE = "workout.request_id"


def bind_request_id(request_id: UUID | str) -> None:
    """From now on, in this task, log lines (and the current span) name ``request_id``."""
    value = str(request_id)
    _request_id.set(value)
    # A no-op on the non-recording span that is current when tracing is off.
    trace.get_current_span().set_attribute(REQUEST_ID_ATTRIBUTE, value)


def reason(exc: BaseException) -> str:
    """An exception as the reason a log line gives: its message, else its type. Never empty, as
    ``str(exc)`` is for asyncio's and many of nats-py's timeouts (``fetch failed (); retrying``)."""
    return str(exc) or type(exc).__name__


def current_request_id() -> str | None:
    """The request the current task is handling, if any."""
    return _request_id.get()


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``timestamp``, ``level``, ``service``, ``logger``, ``message``, and
    ``request_id``, ``trace_id``/``span_id``, ``exception``, ``stack`` and ``extra=`` fields when present."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self._service,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if (request_id := _request_id.get()) is not None:
            line["request_id"] = request_id
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            line["trace_id"] = trace.format_trace_id(span.trace_id)
            line["span_id"] = trace.format_span_id(span.span_id)
        if record.exc_info:
            line["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and key not in line:
                line[key] = value
        # default=str: an ``extra=`` value orjson cannot encode is logged as its text, never dropped.
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """``2025-01-01T12:00:00 INFO planner services.planner.app: message [request_id=...]``, for people."""

    def __init__(self, service: str) -> None:
        super().__init__(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s", "%Y-%m-%dT%H:%M:%S")

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        text = super().formatMessage(record)
        request_id = _request_id.get()
        return text if request_id is None else f"{text} [request_id={request_id}]"


def configure_logging(service: str, level: str = "INFO", log_format: LogFormat = "json") -> None:
    """Every record to stderr (collected by the platform), one line each, in ``log_format``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service) if log_format == "json" else TextFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The broker and HTTP client libraries are chatty at INFO.
    for noisy in ("httpx", "httpx2", "aiohttp", "faststream", "nats", "openai"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
