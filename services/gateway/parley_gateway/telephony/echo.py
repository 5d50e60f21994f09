"""Echo suppression for phone calls (not echo cancellation: Parley has no AEC).

A phone's speaker leaks the assistant's voice into its microphone; the STT would hear that
echo as the caller talking and the assistant would interrupt itself. While the phone plays
the assistant (the provider's echoed marks say what it played, and when), a caller frame
that is not clearly louder than the loudest audio played within the echo's delay is taken
for echo and replaced by silence. Speech louder than the assistant minus ``margin_db``
still interrupts it; quieter speech over the assistant is lost until it stops. After the
assistant stops (or a barge-in clears it), the gate opens once the echo delay has passed.
"""

from __future__ import annotations

import math
import sys
import time
from array import array
from collections import deque

# How long after a chunk was played its echo may still come back: the phone's playout,
# the acoustic path and the network back to the gateway.
ECHO_TAIL_S = 0.6


def rms(pcm: bytes) -> float:
    """Root-mean-square level of PCM16 LE samples (0 for no samples)."""
    samples = array("h", pcm[: len(pcm) - len(pcm) % 2])
    if sys.byteorder == "big":
        samples.byteswap()
    if not samples:
        return 0.0
    return math.sqrt(sum(s * s for s in samples) / len(samples))


class EchoGate:
    """Silences caller frames no louder than an echo of what the phone just played."""

    def __init__(self, margin_db: float, tail_s: float = ECHO_TAIL_S) -> None:
        self.ratio = 10 ** (-margin_db / 20)
        self.tail_s = tail_s
        self.suppressed = 0  # frames silenced so far
        self._played: deque[tuple[float, float]] = deque()  # (when, level)

    def played(self, level: float, now: float | None = None) -> None:
        """The phone played a chunk of RMS ``level`` (now)."""
        self._played.append((time.monotonic() if now is None else now, level))

    def filter(self, pcm: bytes, now: float | None = None) -> bytes:
        """``pcm`` (PCM16 from the caller), or silence of its length when it may be echo."""
        reference = self._reference(time.monotonic() if now is None else now)
        if reference > 0 and rms(pcm) < reference * self.ratio:
            self.suppressed += 1
            return bytes(len(pcm))
        return pcm

    def _reference(self, now: float) -> float:
        while self._played and now - self._played[0][0] > self.tail_s:
            self._played.popleft()
        return max((level for _, level in self._played), default=0.0)
