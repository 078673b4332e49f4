"""Tracing is off unless OTEL_TRACES_EXPORTER asks; only units of work start traces; a stored
traceparent resumes its trace."""

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, Decision
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

from service_runtime.tracing import (
    _UnitsOfWork,
    configure_tracing,
    current_traceparent,
    resumed,
    tracing_requested,
)

SPAN = SpanContext(
    trace_id=0x0AF7651916CD43DD8448EB211C80319C,
    span_id=0xB7AD6B7169203331,
    is_remote=False,
    trace_flags=TraceFlags(TraceFlags.SAMPLED),
)


@pytest.mark.parametrize(
    ("environ", "exporters"),
    [
        ({}, ()),
        ({"OTEL_TRACES_EXPORTER": "none"}, ()),
        ({"OTEL_TRACES_EXPORTER": ""}, ()),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ()),  # an endpoint alone turns nothing on
        ({"OTEL_TRACES_EXPORTER": "otlp"}, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "OTLP, console"}, ("otlp", "console")),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"}, ("otlp",)),
        ({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_SDK_DISABLED": "true"}, ()),
    ],
)
def test_tracing_is_on_only_when_an_exporter_is_named(environ: dict[str, str], exporters: tuple[str, ...]) -> None:
    assert tracing_requested(environ) == exporters


@pytest.mark.parametrize(
    "environ",
    [
        {"OTEL_TRACES_EXPORTER": "jaeger"},
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
        {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc"},
    ],
)
def test_an_exporter_we_do_not_ship_fails_at_start(environ: dict[str, str]) -> None:
    with pytest.raises(ValueError, match=r"not supported|unsupported"):
        tracing_requested(environ)


def test_without_the_variables_nothing_is_set_up() -> None:
    assert configure_tracing("planner", environ={}) is False
    assert not trace.get_current_span().get_span_context().is_valid


def test_only_a_unit_of_work_starts_a_trace() -> None:
    sampler = _UnitsOfWork(ALWAYS_ON)
    for kind in (SpanKind.SERVER, SpanKind.CONSUMER, SpanKind.PRODUCER):
        assert sampler.should_sample(None, 1, "work", kind).decision == Decision.RECORD_AND_SAMPLE
    for kind in (SpanKind.CLIENT, SpanKind.INTERNAL):
        assert sampler.should_sample(None, 1, "SELECT", kind).decision == Decision.DROP
    inside = trace.set_span_in_context(NonRecordingSpan(SPAN))
    assert (
        sampler.should_sample(inside, SPAN.trace_id, "SELECT", SpanKind.CLIENT).decision == Decision.RECORD_AND_SAMPLE
    )


def test_a_stored_traceparent_resumes_its_trace() -> None:
    assert current_traceparent() is None
    with trace.use_span(NonRecordingSpan(SPAN)):
        traceparent = current_traceparent()
    assert traceparent == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    with resumed(traceparent):
        parent = trace.get_current_span().get_span_context()
        assert (parent.trace_id, parent.span_id, parent.is_remote) == (SPAN.trace_id, SPAN.span_id, True)
    assert not trace.get_current_span().get_span_context().is_valid
    with resumed(None):
        assert not trace.get_current_span().get_span_context().is_valid
