"""Optional OpenTelemetry tracing: one trace follows a request from the client through the dispatcher
and the worker into the connector, carried across AMQP as W3C `traceparent` / `tracestate` headers.

Off by default and free when off: with no tracer installed every helper here is one `is None` test.
`SCF_TRACING=otlp` (the `otel` extra plus `opentelemetry-exporter-otlp`, configured by the standard
`OTEL_EXPORTER_OTLP_*` variables) or `console` turns it on in fleet processes; `use(provider)` installs
any tracer provider (tests use the SDK's in-memory exporter). Spans: `scf.client <message type>`,
`scf.dispatcher <message type>`, `scf.worker <message type>`, `scf.connector <type>.<operation>`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

import structlog

log = structlog.get_logger(__name__)

#: The tracer when tracing is on; None (the default) makes every helper a no-op.
_tracer: Any = None
_NOTHING = contextlib.nullcontext()


def active() -> bool:
    return _tracer is not None


def use(provider: Any | None) -> None:
    """Trace with `provider` (an OpenTelemetry TracerProvider); None turns tracing off again."""
    global _tracer
    if provider is None:
        _tracer = None
        return
    _tracer = provider.get_tracer("scf")


def configure(mode: str) -> None:
    """`SCF_TRACING`: off, console or otlp. A mode whose packages are missing logs why and stays off."""
    if mode == "off":
        return
    try:
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

        exporter: SpanExporter
        if mode == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        else:
            exporter = ConsoleSpanExporter()
    except ImportError as exc:
        log.warning("tracing_unavailable", mode=mode, missing=exc.name, hint="pip install '...[otel]'")
        return
    provider = TracerProvider(resource=Resource.create({"service.name": "scf"}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    use(provider)


def inject(headers: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Add the current span's `traceparent` (and `tracestate`) to outgoing AMQP headers."""
    if _tracer is not None:
        from opentelemetry import propagate

        propagate.inject(headers)
    return headers


def span(
    role: str, what: object, attributes: Mapping[str, Any] | None = None
) -> contextlib.AbstractContextManager[Any]:
    """A child of the current span (in this process), named `<role> <what>` (built only when tracing)."""
    if _tracer is None:
        return _NOTHING
    return _tracer.start_as_current_span(f"{role} {what}", attributes=dict(attributes or {}))  # type: ignore[no-any-return]


@contextlib.contextmanager
def _consumed(name: str, headers: Mapping[str, Any], attributes: Mapping[str, Any]) -> Iterator[Any]:
    from opentelemetry import propagate, trace

    parent = propagate.extract({k: v for k, v in headers.items() if isinstance(v, str)})
    with _tracer.start_as_current_span(
        name, context=parent, kind=trace.SpanKind.CONSUMER, attributes=dict(attributes)
    ) as current:
        structlog.contextvars.bind_contextvars(trace_id=format(current.get_span_context().trace_id, "032x"))
        try:
            yield current
        finally:
            structlog.contextvars.unbind_contextvars("trace_id")


def consumed(
    role: str, what: object, headers: Mapping[str, Any] | None, attributes: Mapping[str, Any] | None = None
) -> contextlib.AbstractContextManager[Any]:
    """A span `<role> <what>` for handling a consumed message, continuing the trace its headers carry."""
    if _tracer is None:
        return _NOTHING
    return _consumed(f"{role} {what}", headers or {}, attributes or {})
