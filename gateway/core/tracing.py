"""Optional OpenTelemetry tracing, with the trace context carried in message headers.

Off by default and free when off (every helper checks one global). Turned on by
``GATEWAY_TRACING=otlp`` (or ``console``), or by setting the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``; needs
``pip install 'chat-gateway[otel]'``. The SDK reads its usual variables
(``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, the exporter's endpoint and
headers, ``OTEL_SDK_DISABLED``).

One webhook is one trace, across processes::

    POST /slack/events (server)            gateway serve
      publish events (producer)            traceparent -> AMQP headers
        turn echo (consumer)               gateway consume
          publish outbound (producer)      traceparent -> AMQP headers
            send slack reply (consumer)    the platform call, its retries and 429 waits

Dead letters keep the headers, so a replayed event continues the trace of the
turn that failed. Log lines written inside a span carry ``trace_id`` and
``span_id``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any

from gateway.core.errors import ConfigError

#: The active tracer; ``None`` while tracing is off.
_tracer: Any = None
_provider: Any = None
_propagator: Any = None
_kinds: dict[str, Any] = {}

MODES = ("off", "otlp", "console")
INSTALL_HINT = "install the extra: pip install 'chat-gateway[otel]'"


def enabled() -> bool:
    return _tracer is not None


def mode_from_env(explicit: str | None, env: Mapping[str, str] | None = None) -> str:
    """``GATEWAY_TRACING`` when set; otherwise ``otlp`` when an OTLP endpoint is configured, else ``off``."""
    env = os.environ if env is None else env
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return "off"
    if explicit:
        mode = explicit.strip().lower()
        if mode not in MODES:
            raise ConfigError(f"GATEWAY_TRACING={explicit!r}: use one of {', '.join(MODES)}")
        return mode
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        return "otlp"
    return "off"


def check_installed(mode: str) -> None:
    """Raise ConfigError with the fix when ``mode`` needs packages that are missing."""
    try:
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError as exc:
        raise ConfigError(f"tracing is on ({mode}) but OpenTelemetry is not installed: {INSTALL_HINT}") from exc
    if mode == "otlp":
        _exporter(mode)


def setup(mode: str, *, role: str, exporter: Any = None, set_global: bool = True) -> None:
    """Start tracing. ``exporter`` overrides the one ``mode`` picks (tests pass an in-memory one)."""
    global _tracer, _provider, _propagator
    if mode == "off" and exporter is None:
        return
    try:
        from opentelemetry import trace
        from opentelemetry.propagate import get_global_textmap
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    except ImportError as exc:
        raise ConfigError(f"tracing is on ({mode}) but OpenTelemetry is not installed: {INSTALL_HINT}") from exc

    if exporter is None:
        exporter = _exporter(mode)
        processor: Any = BatchSpanProcessor(exporter)
    else:
        processor = SimpleSpanProcessor(exporter)
    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", "chat-gateway")}).merge(
        Resource.create({"gateway.role": role})
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(processor)
    if set_global:  # agents' own instrumentation (an HTTP client, an LLM SDK) nests under the turn
        trace.set_tracer_provider(provider)
    _provider = provider
    _tracer = provider.get_tracer("chat-gateway")
    _propagator = get_global_textmap()
    _kinds.update(
        server=trace.SpanKind.SERVER,
        client=trace.SpanKind.CLIENT,
        producer=trace.SpanKind.PRODUCER,
        consumer=trace.SpanKind.CONSUMER,
        internal=trace.SpanKind.INTERNAL,
    )


def _exporter(mode: str) -> Any:
    if mode == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:
        raise ConfigError(f"GATEWAY_TRACING=otlp needs the OTLP exporter: {INSTALL_HINT}") from exc
    return OTLPSpanExporter()


def shutdown() -> None:
    """Flush what is buffered and stop tracing."""
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer = None
    _provider = None


def inject(headers: MutableMapping[str, Any]) -> None:
    """Write the current trace context (``traceparent``, ``tracestate``) into message headers."""
    if _tracer is not None:
        _propagator.inject(headers)


_NO_SPAN: contextlib.nullcontext[None] = contextlib.nullcontext()


def span(
    name: str,
    *,
    kind: str = "internal",
    parent: Mapping[str, Any] | None = None,
    links: list[Mapping[str, Any]] | None = None,
    attributes: Mapping[str, Any] | Callable[[], Mapping[str, Any]] | None = None,
) -> contextlib.AbstractContextManager[Any]:
    """A span, current inside the block; its parent is read from ``parent`` headers when given.

    Yields ``None`` when tracing is off, at the cost of one check (pass ``attributes`` as a callable
    so that they are not even built then). Exceptions are recorded and set the status to error.
    """
    if _tracer is None:
        return _NO_SPAN
    return _span(name, kind, parent, links, attributes() if callable(attributes) else attributes)


@contextlib.contextmanager
def _span(
    name: str,
    kind: str,
    parent: Mapping[str, Any] | None,
    links: list[Mapping[str, Any]] | None,
    attributes: Mapping[str, Any] | None,
) -> Iterator[Any]:
    assert _tracer is not None
    from opentelemetry import trace

    context = _propagator.extract(_text_headers(parent)) if parent is not None else None
    span_links = None
    if links:
        span_links = []
        for headers in links:
            linked = trace.get_current_span(_propagator.extract(_text_headers(headers))).get_span_context()
            if linked.is_valid:
                span_links.append(trace.Link(linked))
    with _tracer.start_as_current_span(
        name, context=context, kind=_kinds[kind], attributes=_present(attributes or {}), links=span_links
    ) as current:
        yield current


def _text_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key in ("traceparent", "tracestate"):
        value = headers.get(key)
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if isinstance(value, str):
            out[key] = value
    return out


def _present(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """OpenTelemetry attributes cannot be None: those are left out."""
    return {k: v for k, v in attributes.items() if v is not None}


def set_attributes(current: Any, **attributes: Any) -> None:
    if current is not None:
        current.set_attributes(_present(attributes))


def add_event(current: Any, name: str, **attributes: Any) -> None:
    if current is not None:
        current.add_event(name, _present(attributes))


def set_error(current: Any, description: str) -> None:
    """Mark a span failed without an exception escaping it (a turn that gives up, a dead letter)."""
    if current is not None:
        from opentelemetry.trace import Status, StatusCode

        current.set_status(Status(StatusCode.ERROR, description[:500]))


def log_ids(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: ``trace_id`` and ``span_id`` of the current span, when tracing is on."""
    if _tracer is not None:
        from opentelemetry import trace

        ctx = trace.get_current_span().get_span_context()
        if ctx.is_valid:
            event_dict["trace_id"] = format(ctx.trace_id, "032x")
            event_dict["span_id"] = format(ctx.span_id, "016x")
    return event_dict
