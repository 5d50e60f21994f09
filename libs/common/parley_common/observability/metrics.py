"""Prometheus helpers and the metrics every service shares.

Names follow Prometheus' conventions: a ``parley_`` prefix, the unit in the name (seconds,
``_total`` for counters), and labels of low cardinality only — service, provider, model,
stage, reason — never a session, turn or user id (a test scrapes every service and fails on
one). Stage latencies live next to the code that measures them (``parley_stt_final_seconds``
in the STT session, ...); what many modules count is defined here once.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

# Buckets for voice latencies: 5 ms to 10 s, dense where conversations feel the difference.
LATENCY_BUCKETS_S = (
    0.005,
    0.01,
    0.02,
    0.04,
    0.06,
    0.08,
    0.1,
    0.15,
    0.2,
    0.25,
    0.3,
    0.4,
    0.5,
    0.6,
    0.7,
    0.8,
    1.0,
    1.25,
    1.5,
    2.0,
    3.0,
    5.0,
    10.0,
)


def latency_histogram(name: str, doc: str, labels: tuple[str, ...] = ()) -> Histogram:
    """A histogram in seconds with the voice latency buckets."""
    return Histogram(name, doc, labelnames=labels, buckets=LATENCY_BUCKETS_S)


ACTIVE_SESSIONS = Gauge("parley_active_sessions", "Sessions this process holds now", ["service"])
AUDIO_FRAMES = Counter(
    "parley_audio_frames_total",
    "Audio frames handled (in: from the user, out: of the assistant)",
    ["service", "direction"],
)
DROPPED_FRAMES = Counter(
    "parley_audio_frames_dropped_total",
    "Audio frames not delivered, by why (late, interrupted turn, malformed)",
    ["service", "reason"],
)
INTERRUPTIONS = Counter(
    "parley_interruptions_total", "Assistant turns cut short, by why", ["service", "reason"]
)
PROVIDER_ERRORS = Counter(
    "parley_provider_errors_total",
    "Provider calls that failed, by provider and error code",
    ["service", "provider", "code"],
)
EVENT_LOOP_LAG_SECONDS = Histogram(
    "parley_event_loop_lag_seconds",
    "How late the event loop ran a timer: time blocked by work that should be off the loop",
    ["service"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
BUS_REQUEST_SECONDS = latency_histogram(
    "parley_bus_request_seconds", "NATS request to reply, by what was asked", ("target",)
)
DB_WRITE_SECONDS = latency_histogram(
    "parley_db_write_seconds", "One database write, by what was written", ("service", "table")
)
JETSTREAM_PENDING = Gauge(
    "parley_jetstream_pending_messages",
    "Durable events not yet processed by a consumer (its lag)",
    ["consumer"],
)


def render_metrics() -> tuple[bytes, str]:
    """The process's metrics in the Prometheus text format, with its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
