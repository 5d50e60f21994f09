"""The durable events stream's retention and limits, configured rather than left at
JetStream's defaults (unlimited, forever, one replica).

Durable facts wait in the stream while a consumer (analytics) is down, so the limits are
how long an outage may last without loss: ``PARLEY_EVENTS_MAX_AGE_S`` (7 days) and
``PARLEY_EVENTS_MAX_BYTES`` (1 GiB; the oldest are dropped beyond it, never new facts
refused). ``PARLEY_EVENTS_REPLICAS`` is 3 on a NATS cluster. Publishers set a message id,
and the stream drops a repeat of it within ``duplicate_window``: a publish retried after a
lost ack is stored once.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

from parley_common.settings import positive_int_env

__all__ = ["StreamLimits"]

_DAY_S = 86400
_MAX_AGE_S = 7 * _DAY_S
_MAX_BYTES = 1024**3
_DUPLICATE_WINDOW_S = 120


@dataclass(frozen=True, slots=True)
class StreamLimits:
    """How much the events stream keeps, and on how many servers."""

    max_age_s: int = _MAX_AGE_S
    max_bytes: int = _MAX_BYTES
    replicas: int = 1
    duplicate_window_s: int = _DUPLICATE_WINDOW_S

    @classmethod
    def from_env(cls) -> StreamLimits:
        """The limits from ``PARLEY_EVENTS_*`` (defaults above)."""
        return cls(
            max_age_s=positive_int_env("PARLEY_EVENTS_MAX_AGE_S", _MAX_AGE_S),
            max_bytes=positive_int_env("PARLEY_EVENTS_MAX_BYTES", _MAX_BYTES),
            replicas=positive_int_env("PARLEY_EVENTS_REPLICAS", 1),
            duplicate_window_s=positive_int_env(
                "PARLEY_EVENTS_DUPLICATE_WINDOW_S", _DUPLICATE_WINDOW_S
            ),
        )

    def config(self, name: str, subjects: list[str]) -> StreamConfig:
        """The stream's configuration with these limits."""
        return StreamConfig(
            name=name,
            subjects=subjects,
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=float(self.max_age_s),
            max_bytes=self.max_bytes,
            num_replicas=self.replicas,
            duplicate_window=float(self.duplicate_window_s),
        )

    def differs(self, current: StreamConfig) -> bool:
        """Whether a stream configured as ``current`` needs updating to these limits."""
        return (
            current.max_age != float(self.max_age_s)
            or current.max_bytes != self.max_bytes
            or current.num_replicas != self.replicas
            or current.duplicate_window != float(self.duplicate_window_s)
        )
