"""Whether the uplink holds an echo of the assistant at all.

AEC3 assumes an echo until it has learnt there is none, which takes it seconds of the
assistant's audio: meanwhile a client without echo (headphones, a client with its own AEC)
loses the user's words spoken over the assistant, and a barge-in with them. So the gateway
watches for the echo itself: an echo's loudness follows the assistant's, some lag later;
the user's voice (or a room's noise) does not. The log-energy envelopes of the two streams,
10 ms a point, are correlated over the lags AEC3 can reach; a strong correlation is an
echo, a weak one while the assistant spoke is none. Until it is known, AEC3's output is
used (an echo must never get through); once there is none, the uplink passes as it came.
"""

from __future__ import annotations

from collections import deque

import numpy as np
import numpy.typing as npt

WINDOW = 150  # blocks (1.5 s) correlated at most (from MIN_ACTIVE on)
MAX_LAG = 46  # blocks: AEC3's own delay search reaches about 450 ms
LAG_STEP = 2
EVERY = 10  # blocks between two judgements (100 ms)
ECHO_CORRELATION = 0.75  # at least this at some lag: an echo (the user talking reaches ~0.7)
NO_ECHO_CORRELATION = 0.3  # below this at every lag, while the assistant spoke: none
FAR_ACTIVE_DB = 30.0  # a reference block above this level (RMS ~ 30) is the assistant speaking
MIN_ACTIVE = 50  # blocks of the assistant speaking in the window before judging (0.5 s)
# Judgements of no echo in a row before the uplink passes untouched: soon when no echo was
# ever seen, later once one was (the user talking over it also looks like no echo).
FIRST_NO_ECHO = 3
LATER_NO_ECHO = 30


def _envelope(blocks: npt.NDArray[np.int16], size: int) -> npt.NDArray[np.float64]:
    samples = blocks.astype(np.float64).reshape(-1, size)
    envelope: npt.NDArray[np.float64] = 10 * np.log10(np.mean(samples**2, axis=1) + 1.0)
    return envelope


class EchoPresence:
    """Judges, from 10 ms blocks of the uplink and of the reference under them, whether
    the uplink carries the reference's echo (``cancelling``: AEC3's output is to be used)."""

    def __init__(self, block: int) -> None:
        self.block = block
        self._near: deque[float] = deque(maxlen=WINDOW + MAX_LAG)
        self._far: deque[float] = deque(maxlen=WINDOW + MAX_LAG)
        self.echo_seen = False
        self._no_echo = 0  # judgements of no echo in a row
        self.cancelling = True
        self.correlation = 0.0  # the last judgement's, at its best lag
        self._since_judged = 0

    def push(self, near: npt.NDArray[np.int16], far: npt.NDArray[np.int16]) -> None:
        """Whole blocks of the uplink and the reference aligned with them."""
        self._near.extend(_envelope(near, self.block))
        self._far.extend(_envelope(far, self.block))
        self._since_judged += len(near) // self.block
        if self._since_judged >= EVERY and len(self._near) >= MAX_LAG + MIN_ACTIVE:
            self._since_judged = 0
            self._judge()

    def silence(self) -> None:
        """Nothing was played for a while: the window starts again with the next audio."""
        self._near.clear()
        self._far.clear()

    def _judge(self) -> None:
        near = np.fromiter(self._near, dtype=np.float64)[MAX_LAG:]
        far = np.fromiter(self._far, dtype=np.float64)
        # Row i: the reference under the uplink i * LAG_STEP blocks earlier (all lags at once).
        lagged = np.lib.stride_tricks.sliding_window_view(far, len(near))[::-1][::LAG_STEP]
        active = int(np.count_nonzero(lagged > FAR_ACTIVE_DB, axis=1).max())
        near_dev = near - near.mean()
        far_dev = lagged - lagged.mean(axis=1, keepdims=True)
        scale = np.sqrt((far_dev**2).sum(axis=1) * (near_dev**2).sum())
        with np.errstate(divide="ignore", invalid="ignore"):
            correlations = np.where(scale > 0, far_dev @ near_dev / scale, -1.0)
        best = float(correlations.max())
        self.correlation = best
        if best >= ECHO_CORRELATION:
            self.echo_seen, self._no_echo, self.cancelling = True, 0, True
        elif best < NO_ECHO_CORRELATION and active >= MIN_ACTIVE:
            self._no_echo += 1
            if self._no_echo >= (LATER_NO_ECHO if self.echo_seen else FIRST_NO_ECHO):
                self.cancelling = False
        else:
            self._no_echo = 0
