"""Tracing switched on for one test, spans kept in memory (the process-wide provider is left alone)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from gateway.core import tracing


@contextmanager
def memory_spans(role: str = "test") -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    tracing.setup("off", role=role, exporter=exporter, set_global=False)
    try:
        yield exporter
    finally:
        tracing.shutdown()
