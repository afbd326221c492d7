"""gateway/core/tracing.py without services: when it is on, off, and how it reads the environment."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.core import tracing
from gateway.core.errors import ConfigError
from tests.support.spans import memory_spans


@pytest.mark.parametrize(
    ("explicit", "env", "mode"),
    [
        (None, {}, "off"),
        (None, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "otlp"),
        (None, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, "otlp"),
        ("console", {}, "console"),
        ("OFF", {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, "off"),
        ("otlp", {"OTEL_SDK_DISABLED": "true"}, "off"),
    ],
)
def test_mode_comes_from_gateway_tracing_then_the_standard_otel_variables(
    explicit: str | None, env: dict[str, str], mode: str
) -> None:
    assert tracing.mode_from_env(explicit, env) == mode


def test_an_unknown_mode_is_a_config_error_that_names_the_choices() -> None:
    with pytest.raises(ConfigError, match="off, otlp, console"):
        tracing.mode_from_env("jaeger", {})


def test_off_is_a_no_op() -> None:
    assert not tracing.enabled()
    headers: dict[str, Any] = {"platform": "slack"}
    tracing.inject(headers)
    assert headers == {"platform": "slack"}
    with tracing.span("anything", parent={"traceparent": "00-" + "1" * 32 + "-" + "2" * 16 + "-01"}) as current:
        assert current is None
    assert tracing.log_ids(None, "info", {"event": "x"}) == {"event": "x"}


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    with memory_spans("unit") as exp:
        yield exp


def test_headers_carry_the_context_to_a_child_span_and_log_lines_carry_its_ids(
    exporter: InMemorySpanExporter,
) -> None:
    headers: dict[str, Any] = {}
    with tracing.span("producer", kind="producer") as producer:
        tracing.inject(headers)
    assert headers["traceparent"].startswith("00-" + format(producer.get_span_context().trace_id, "032x"))
    amqp_headers = {k: v.encode() for k, v in headers.items()}  # some brokers hand header strings back as bytes
    with tracing.span("consumer", kind="consumer", parent=amqp_headers) as consumer:
        line = tracing.log_ids(None, "info", {"event": "turn_done"})
    assert consumer.parent.span_id == producer.get_span_context().span_id
    assert line["trace_id"] == format(producer.get_span_context().trace_id, "032x")
    assert line["span_id"] == format(consumer.get_span_context().span_id, "016x")
    assert [s.name for s in exporter.get_finished_spans()] == ["producer", "consumer"]


def test_headers_without_a_context_start_a_new_trace(exporter: InMemorySpanExporter) -> None:
    with tracing.span("outer") as outer, tracing.span("from old message", parent={"platform": "slack"}) as span:
        assert span.parent is None
        assert span.get_span_context().trace_id != outer.get_span_context().trace_id


def test_an_exception_marks_the_span_failed(exporter: InMemorySpanExporter) -> None:
    with pytest.raises(RuntimeError), tracing.span("boom"):
        raise RuntimeError("agent crashed")
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code.name == "ERROR"
    assert [e.name for e in span.events] == ["exception"]
