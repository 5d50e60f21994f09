"""One trace per turn, across services, with OpenTelemetry.

The service where a turn begins starts its root span ``turn`` (the STT at the end of the
user's speech; the dialogue worker for a typed message) and every bus message of that turn
carries the root's W3C ``traceparent`` header. Each service's own work on the turn is a
child of that root: ``stt.final``, ``llm.stream``, ``tts.synthesize``, ``gateway.playout``.
Spans carry ``parley.service`` and low-cardinality attributes (provider, model; the gen_ai
semantic conventions on the LLM's); a barge-in is an event on the playout span.

Export is off by default. The standard variables turn it on: ``OTEL_EXPORTER_OTLP_ENDPOINT``
or ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (OTLP over HTTP/protobuf; the exporter reads the
other ``OTEL_EXPORTER_OTLP_*`` settings itself), or ``OTEL_TRACES_EXPORTER=otlp``. Without
them the OpenTelemetry API is a no-op and a turn costs nothing to trace.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = [
    "TURN_SPAN",
    "child_span",
    "configure_tracing",
    "start_child",
    "start_turn",
    "traceparent_of",
]

TURN_SPAN = "turn"
_PROPAGATOR = TraceContextTextMapPropagator()
_ENDPOINT_VARS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def export_requested() -> bool:
    """Whether the environment asks for traces to be exported."""
    wanted = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if wanted == "none":
        return False
    return wanted == "otlp" or any(os.environ.get(name) for name in _ENDPOINT_VARS)


def configure_tracing(service: str) -> bool:
    """Install the SDK's tracer provider exporting over OTLP/HTTP when the environment asks
    for it (see the module docstring); returns whether it did. Called once per process."""
    if not export_requested():
        return False
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": f"parley-{service}", "service.namespace": "parley"})
    provider = TracerProvider(resource=resource)
    # Batched off the event loop: an export never delays a frame.
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return True


def _tracer() -> trace.Tracer:
    return trace.get_tracer("parley")


def _context(traceparent: str) -> Context | None:
    if not traceparent:
        return None
    return _PROPAGATOR.extract({"traceparent": traceparent})


def traceparent_of(span: Span) -> str:
    """The W3C ``traceparent`` that makes spans in other services children of ``span``;
    empty when tracing is off (nothing to continue)."""
    if not span.get_span_context().is_valid:
        return ""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get("traceparent", "")


def start_turn(service: str, session_id: str, **attributes: Any) -> Span:
    """Start the root span of a new turn (the caller ends it)."""
    return _tracer().start_span(
        TURN_SPAN,
        context=Context(),  # a root: never a child of whatever is current
        kind=SpanKind.INTERNAL,
        attributes={"parley.service": service, "parley.session_id": session_id, **attributes},
    )


def start_child(name: str, traceparent: str, service: str, **attributes: Any) -> Span:
    """Start ``name`` as a child of the turn whose root is ``traceparent`` (a root of its
    own when the turn carried none); the caller ends it."""
    return _tracer().start_span(
        name,
        context=_context(traceparent) or Context(),
        attributes={"parley.service": service, **attributes},
    )


@contextmanager
def child_span(name: str, traceparent: str, service: str, **attributes: Any) -> Iterator[Span]:
    """``start_child`` as the current span for the block, ended when it exits. An error
    that escapes is recorded on it; a cancellation (an interrupted turn) is not an error,
    only marked."""
    span = start_child(name, traceparent, service, **attributes)
    try:
        with trace.use_span(span, record_exception=False, set_status_on_exception=False):
            yield span
    except asyncio.CancelledError:
        span.set_attribute("parley.cancelled", True)
        raise
    except Exception as exc:
        span.record_exception(exc)
        span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        span.end()
