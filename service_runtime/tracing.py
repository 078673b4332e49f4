"""OpenTelemetry traces across the services: off unless the standard ``OTEL_*`` variables turn them on.

The rule: tracing is on when ``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``, ``console``, or
both, comma-separated) and ``OTEL_SDK_DISABLED`` is not ``true``. Unset or ``none``, nothing is set
up and nothing is exported: the SDK's own default (``otlp``) would make every process try to reach a
collector on localhost, and that must be an operator's choice. Everything else is the SDK's standard
reading of the environment: ``OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT`` / ``_HEADERS`` / ``_TIMEOUT``
(OTLP over HTTP/protobuf, ``http://localhost:4318`` by default), ``OTEL_SERVICE_NAME`` and
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER(_ARG)``, ``OTEL_BSP_*``, ``OTEL_PROPAGATORS``.

How one request becomes one trace (docs/observability.md draws it):

- the gateway's HTTP request is a SERVER span (FastAPI instrumentation);
- ``EventBus.publish`` runs in a PRODUCER span (``publishing``) and carries the W3C
  ``traceparent`` in the NATS headers;
- ``LeasedConsumer`` is ours, not FastStream's, so the extraction is ours: ``delivery`` runs each
  delivery in a CONSUMER span whose parent is the publisher's span;
- LLM calls are a ``chat <model>`` span (``llm_call``) over the HTTP spans of the openai SDK's
  transport (aiohttp, see ``service_runtime.llm.client``); SQL statements, the ``COMMIT``
  included, are spans of the asyncpg instrumentation;
- an event staged in the outbox keeps the ``traceparent`` of the request that staged it, so the
  relay publishes it, however late, inside the same trace (``current_traceparent``/``resumed``).

Spans of client libraries that start outside any unit of work (a readiness probe's ``SELECT 1``, a
sweeper round's queries, a key-set refresh) are not sampled: each would be a trace of one span.
"""

import os
import sys
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from fastapi import FastAPI
from nats.aio.msg import Msg
from opentelemetry import context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from opentelemetry.util.types import Attributes

__all__ = [
    "LlmCall",
    "configure_tracing",
    "current_traceparent",
    "delivery",
    "instrument_app",
    "llm_call",
    "publishing",
    "resumed",
    "tracing_requested",
]

_EXPORTERS = ("otlp", "console")
_TRACEPARENT = TraceContextTextMapPropagator()
# Health probes and scrapes come every few seconds and say nothing about a request.
_UNTRACED_URLS = "/healthz,/readyz,/metrics"

# The provider configure_tracing installed; None while tracing is off.
_provider: TracerProvider | None = None


def _tracer() -> trace.Tracer:
    # The global provider: a no-op one while tracing is off.
    return trace.get_tracer("service_runtime")


def tracing_requested(environ: Mapping[str, str] = os.environ) -> tuple[str, ...]:
    """The exporters the environment asks for; empty when tracing is off (see the module docstring)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return ()
    names = tuple(n.strip().lower() for n in environ.get("OTEL_TRACES_EXPORTER", "").split(",") if n.strip())
    if names in ((), ("none",)):
        return ()
    unknown = sorted(set(names) - set(_EXPORTERS))
    if unknown:
        raise ValueError(
            f"OTEL_TRACES_EXPORTER: unsupported {', '.join(unknown)} (use {', '.join(_EXPORTERS)} or none)"
        )
    protocol = environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    if "otlp" in names and protocol not in (None, "", "http/protobuf"):
        raise ValueError(f"OTLP protocol {protocol!r} is not supported: use http/protobuf (a collector's port 4318)")
    return names


def configure_tracing(service: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Set up tracing for this process if the environment asks for it; return whether it is on.

    Called once per process by its entry point, before the app is built (``instrument_app`` and the
    consumers look at what it set up). Instruments aiohttp (the openai SDK's transport), httpx and asyncpg.
    """
    global _provider  # noqa: PLW0603 (tracing is process-wide: OpenTelemetry's provider is global)
    exporters = tracing_requested(environ)
    if not exporters or _provider is not None:
        return _provider is not None
    # Lazy imports: a process with tracing off never loads the exporter or the instrumentations.
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor  # noqa: PLC0415
    from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor  # noqa: PLC0415
    from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor  # noqa: PLC0415

    # OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over the process's own name.
    resource = Resource.create({SERVICE_NAME: service}).merge(OTELResourceDetector().detect())
    # The SDK's reading of OTEL_TRACES_SAMPLER(_ARG); it has no public name.
    provider = TracerProvider(resource=resource, sampler=_UnitsOfWork(sampling._get_from_env_or_default()))
    for exporter in exporters:
        provider.add_span_processor(BatchSpanProcessor(_exporter(exporter)))
    trace.set_tracer_provider(provider)
    AioHttpClientInstrumentor().instrument(tracer_provider=provider)  # the openai SDK's HTTP transport
    HTTPXClientInstrumentor().instrument(tracer_provider=provider)  # ours (the gateway's key set)
    AsyncPGInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    _provider = provider
    return True


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        # One JSON object per line on stdout (logs go to stderr).
        return ConsoleSpanExporter(out=sys.stdout, formatter=lambda span: span.to_json(indent=None) + "\n")
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: PLC0415

    return OTLPSpanExporter()  # endpoint, headers, timeout, compression: OTEL_EXPORTER_OTLP_*


class _UnitsOfWork(sampling.Sampler):
    """``delegate``'s decision, except that only a unit of work may start a trace.

    Units of work are SERVER (an HTTP request), CONSUMER (a delivered event) and PRODUCER (an event
    published on its own, like a sweeper's re-drive) spans. A CLIENT span without a parent is a
    probe's or a chore's query: dropped, with whatever it would have started.
    """

    _ROOTS = frozenset({SpanKind.SERVER, SpanKind.CONSUMER, SpanKind.PRODUCER})

    def __init__(self, delegate: sampling.Sampler) -> None:
        self._delegate = delegate

    def should_sample(  # noqa: PLR0917 (the SDK's signature)
        self,
        parent_context: Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind | None = None,
        attributes: Attributes = None,
        links: Sequence[Link] | None = None,
        trace_state: trace.TraceState | None = None,
    ) -> sampling.SamplingResult:
        parent = trace.get_current_span(parent_context).get_span_context()
        if not parent.is_valid and kind not in self._ROOTS:
            return sampling.SamplingResult(sampling.Decision.DROP)
        return self._delegate.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"UnitsOfWork{{{self._delegate.get_description()}}}"


def instrument_app(app: FastAPI) -> None:
    """A SERVER span per HTTP request (named by route template), when tracing is on; else nothing."""
    if _provider is None:
        return
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor  # noqa: PLC0415

    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=_provider,
        excluded_urls=_UNTRACED_URLS,
        # Not a span per body chunk: a live status stream would make thousands.
        exclude_spans=["receive", "send"],
    )


@contextmanager
def publishing(subject: str, message_id: str, headers: dict[str, str]) -> Iterator[None]:
    """A PRODUCER span (``<subject> publish``) around one publish, its ``traceparent`` put in
    ``headers`` for the consumer's span to continue. Nothing at all while tracing is off."""
    if _provider is None:
        yield
        return
    with _tracer().start_as_current_span(
        f"{subject} publish",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "nats",
            "messaging.operation": "publish",
            "messaging.destination.name": subject,
            "messaging.message.id": message_id,
        },
    ):
        propagate.inject(headers)
        yield


async def delivery(msg: Msg, consumer: str, handle: Callable[[Msg], Awaitable[str]]) -> str:
    """Run ``handle`` (which returns the delivery's outcome) in a CONSUMER span, child of the publisher's span."""
    if _provider is None:
        return await handle(msg)
    subject = msg.subject
    attributes: dict[str, Any] = {
        "messaging.system": "nats",
        "messaging.operation": "process",
        "messaging.destination.name": subject,
        "messaging.consumer.group.name": consumer,
    }
    if msg.headers and (message_id := msg.headers.get("Nats-Msg-Id")):
        attributes["messaging.message.id"] = message_id
    with _tracer().start_as_current_span(
        f"{subject} process",
        context=propagate.extract(msg.headers or {}),
        kind=SpanKind.CONSUMER,
        attributes=attributes,
    ) as span:
        span.set_attribute("messaging.nats.delivery_attempt", msg.metadata.num_delivered or 1)
        outcome = await handle(msg)
        span.set_attribute("workout.delivery.outcome", outcome)
        if outcome != "acked":
            span.set_status(Status(StatusCode.ERROR, outcome))
        return outcome


class LlmCall:
    """The span of one LLM call; ``replied`` records what the model answered."""

    def __init__(self, span: trace.Span) -> None:
        self._span = span

    def replied(self, model: str, *, input_tokens: int, output_tokens: int, finish_reason: str | None = None) -> None:
        self._span.set_attribute("gen_ai.response.model", model)
        self._span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
        self._span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
        if finish_reason is not None:
            self._span.set_attribute("gen_ai.response.finish_reasons", [finish_reason])


_UNRECORDED = LlmCall(trace.INVALID_SPAN)


@contextmanager
def llm_call(model: str, operation: str = "chat") -> Iterator[LlmCall]:
    """A CLIENT span for one LLM call, named as OpenTelemetry's GenAI conventions say (``chat gpt-4o``).

    It lasts the whole call: a streamed reply's HTTP span ends when the headers arrive, minutes early.
    Nothing at all while tracing is off (OpenTelemetry's no-op span still cost ~30 µs a call).
    """
    if _provider is None:
        yield _UNRECORDED
        return
    with _tracer().start_as_current_span(
        f"{operation} {model}",
        kind=SpanKind.CLIENT,
        attributes={
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": model,
        },
    ) as span:
        yield LlmCall(span)


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, to store beside work that continues later; None if none."""
    carrier: dict[str, str] = {}
    _TRACEPARENT.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def resumed(traceparent: str | None) -> Iterator[None]:
    """Make the span ``traceparent`` names the current parent for the block (no-op for None)."""
    if not traceparent:
        yield
        return
    token = context.attach(_TRACEPARENT.extract({"traceparent": traceparent}))
    try:
        yield
    finally:
        context.detach(token)
