"""The session's input-audio clock, owned by the gateway.

Every audio message to the STT worker says where in the session's input audio it starts,
so a worker that takes the session over (failover) continues the same clock, and the
``at_ms`` of its speech events map back to when that audio reached the gateway, for
barge-in timing and latency. The position survives reconnects of the same session to this
gateway.
"""

from __future__ import annotations

import bisect
import time
from collections import OrderedDict, deque

from parley_common.bus.audio import INPUT_SAMPLE_RATE

BYTES_PER_SAMPLE = 2  # PCM16 mono
MAX_SESSIONS = 10_000  # positions kept for reconnects; the least recently used go first


class AudioClock:
    """Input-audio position of one connection, and when each part of it arrived."""

    def __init__(self, start_sample: int = 0, history: int = 3000) -> None:
        self.sample = start_sample  # samples of the session's input audio so far
        self._ends: deque[float] = deque(maxlen=history)  # offset (ms) at each frame's end
        self._times: deque[float] = deque(maxlen=history)

    def received(self, n_bytes: int, now: float | None = None) -> int:
        """Record that ``n_bytes`` of audio arrived now; returns the sample offset at which
        they start."""
        start = self.sample
        self.sample += n_bytes // BYTES_PER_SAMPLE
        self._ends.append(self.sample * 1000 / INPUT_SAMPLE_RATE)
        self._times.append(time.perf_counter() if now is None else now)
        return start

    def wall_time(self, at_ms: float) -> float | None:
        """When the audio at offset ``at_ms`` arrived; None if it is older than the history
        (or from before this connection)."""
        if not self._ends or at_ms < self._ends[0] - 1000:
            return None
        i = bisect.bisect_left(self._ends, at_ms)
        if i >= len(self._ends):
            return self._times[-1]
        # A frame arrives whole: audio inside it is dated by its end, the moment it arrived.
        return self._times[i]


class SessionPositions:
    """The input-audio position of each session on this gateway, so a reconnecting client
    continues the clock instead of restarting it at 0. Bounded: least recently used first."""

    def __init__(self, limit: int = MAX_SESSIONS) -> None:
        self.limit = limit
        self._positions: OrderedDict[str, int] = OrderedDict()

    def get(self, session_id: str) -> int:
        """Where the session's input audio stands (0 for a new session)."""
        return self._positions.get(session_id, 0)

    def set(self, session_id: str, sample: int) -> None:
        """Remember the session's position."""
        self._positions.pop(session_id, None)
        self._positions[session_id] = sample
        while len(self._positions) > self.limit:
            self._positions.popitem(last=False)

    def forget(self, session_id: str) -> None:
        """The session ended."""
        self._positions.pop(session_id, None)

    def __len__(self) -> int:
        return len(self._positions)
