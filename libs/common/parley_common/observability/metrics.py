"""Prometheus helpers shared by every service."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Histogram, generate_latest

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


def render_metrics() -> tuple[bytes, str]:
    """The process's metrics in the Prometheus text format, with its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST
