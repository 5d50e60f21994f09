"""Metadata every bus message carries, as NATS headers.

Session id, turn id, sequence number, origin timestamp and a W3C ``traceparent``: with these
on every message, latency per stage and one trace per turn fall out without extra messages.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

SESSION = "Parley-Session"
TURN = "Parley-Turn"
SEQ = "Parley-Seq"
ORIGIN_TS = "Parley-Ts"
TRACEPARENT = "traceparent"
_KNOWN = frozenset({SESSION, TURN, SEQ, ORIGIN_TS, TRACEPARENT})


def now_us() -> int:
    """Wall-clock time in microseconds, the unit of ``Parley-Ts``."""
    return time.time_ns() // 1000


def new_traceparent() -> str:
    """A W3C traceparent starting a new trace (one per turn)."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


@dataclass(frozen=True, slots=True)
class MessageMeta:
    """The headers of one bus message. ``extra`` holds channel-specific ones (audio rate...)."""

    session_id: str
    turn_id: int = 0
    seq: int = 0
    origin_us: int = field(default_factory=now_us)
    traceparent: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def to_headers(self) -> dict[str, str]:
        """Encode as NATS headers."""
        headers = {
            SESSION: self.session_id,
            TURN: str(self.turn_id),
            SEQ: str(self.seq),
            ORIGIN_TS: str(self.origin_us),
        }
        if self.traceparent:
            headers[TRACEPARENT] = self.traceparent
        headers.update(self.extra)
        return headers

    @classmethod
    def from_headers(cls, headers: dict[str, str] | None) -> MessageMeta:
        """Decode NATS headers; missing numeric fields read as 0."""
        h = headers or {}
        return cls(
            session_id=h.get(SESSION, ""),
            turn_id=_int(h.get(TURN)),
            seq=_int(h.get(SEQ)),
            origin_us=_int(h.get(ORIGIN_TS)),
            traceparent=h.get(TRACEPARENT, ""),
            extra={k: v for k, v in h.items() if k not in _KNOWN},
        )


def _int(value: str | None) -> int:
    try:
        return int(value) if value is not None else 0
    except ValueError:
        return 0
