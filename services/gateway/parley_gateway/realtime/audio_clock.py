"""When each moment of the user's audio reached the gateway, so that VAD offsets from the
STT worker (``at_ms``) turn into wall-clock times for latency measurements."""

from __future__ import annotations

import bisect
import time
from collections import deque

BYTES_PER_MS = 32  # PCM16 mono 16 kHz


class AudioClock:
    """Maps input-audio offsets (ms) to the ``perf_counter`` time they arrived."""

    def __init__(self, history: int = 3000) -> None:
        self.received_ms = 0.0
        self._ends: deque[float] = deque(maxlen=history)  # offset at the end of each frame
        self._times: deque[float] = deque(maxlen=history)

    def received(self, n_bytes: int, now: float | None = None) -> None:
        """Record that ``n_bytes`` of audio arrived now."""
        self.received_ms += n_bytes / BYTES_PER_MS
        self._ends.append(self.received_ms)
        self._times.append(time.perf_counter() if now is None else now)

    def wall_time(self, at_ms: float) -> float | None:
        """When the audio at offset ``at_ms`` arrived; None if it is older than the history."""
        if not self._ends or at_ms < self._ends[0] - 1000:
            return None
        i = bisect.bisect_left(self._ends, at_ms)
        if i >= len(self._ends):
            return self._times[-1]
        # A frame arrives whole: audio inside it is dated by its end, the moment it arrived.
        return self._times[i]
