"""Phone audio out: the bridge's paced ``Playout``, with the timeline of what the caller has
heard taken from the provider's marks instead of a clock.

After every chunk a mark goes out; the provider echoes it once the phone has played the
audio before it, so "heard" is exact to a chunk (40 ms at most) and pacing keeps the provider's
buffer ``lead_ms`` ahead of the phone. On a barge-in the bridge drops the turn and the
connection sends ``clear``: the provider discards what it holds (and may echo the pending
marks, which then mean nothing), and the timeline stays where the last echoed mark put it.
A provider that echoes no mark (for ``mark_timeout_s`` past the lead) is paced by the
clock from then on, as the native protocol is, and heard is then an estimate.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from parley_common.audio.resampling import StreamResampler
from parley_gateway.realtime.playout import Playout, SendAudio, TurnAudio, TurnCallback
from parley_gateway.telephony.echo import rms
from parley_gateway.telephony.events import PHONE_RATE

log = logging.getLogger(__name__)

MARK_TIMEOUT_S = 2.0
_BYTES_PER_MS = PHONE_RATE * 2 / 1000

SendMark = Callable[[str], Awaitable[None]]
OnPlayed = Callable[[float], None]  # the RMS level of a chunk the phone has played


@dataclass(frozen=True)
class _Chunk:
    end_ms: float  # where the chunk ends on the playback timeline
    sent_at: float
    level: float


def _nothing(level: float) -> None:
    return None


class MarkedPlayout(Playout):
    """A phone connection's outgoing audio at 8 kHz (an ``AudioOutput``): each chunk is
    sent with ``send`` then followed by a mark sent with ``send_mark``; ``marked`` takes
    the provider's echo of one. Audio at another rate is resampled first."""

    def __init__(
        self,
        send: SendAudio,
        send_mark: SendMark,
        on_start: TurnCallback,
        on_first_frame: TurnCallback,
        on_end: TurnCallback,
        lead_ms: float,
        on_played: OnPlayed | None = None,
        mark_timeout_s: float = MARK_TIMEOUT_S,
    ) -> None:
        super().__init__(self._send_chunk, on_start, on_first_frame, on_end, lead_ms)
        self.mark_timeout_s = mark_timeout_s
        self._send_audio = send
        self._send_mark = send_mark
        self._on_played = on_played or _nothing
        self._unplayed: OrderedDict[str, _Chunk] = OrderedDict()  # by mark name, in order
        self._played_ms = 0.0  # the end of the last chunk whose mark came back
        self._marks = 0
        self._estimating = False
        self._resamplers: dict[int, StreamResampler] = {}

    @property
    def estimating(self) -> bool:
        """Whether the provider echoes no marks, so that the clock paces the audio."""
        return self._estimating

    def played_ms(self, now: float | None = None) -> float:
        """Where the phone's playback is on the timeline: the last echoed mark."""
        if not self._estimating and self._unplayed:
            now = time.perf_counter() if now is None else now
            oldest = next(iter(self._unplayed.values()))
            if now - oldest.sent_at > self.lead_ms / 1000 + self.mark_timeout_s:
                self._estimating = True
                log.warning("the phone provider echoes no marks: heard is estimated")
        if self._estimating:
            return super().played_ms(now)
        return min(self._played_ms, self._sent_total_ms)

    def marked(self, name: str) -> None:
        """The provider echoed mark ``name``: the phone played every chunk up to it."""
        if name not in self._unplayed:
            return  # a mark of audio a clear dropped, or not one of ours
        while self._unplayed:
            mark, chunk = self._unplayed.popitem(last=False)
            self._on_played(chunk.level)
            if mark == name:
                self._played_ms = max(self._played_ms, chunk.end_ms)
                break
        self._wake.set()

    def add(self, turn_id: int, pcm: bytes, rate: int, text_start: int, text_end: int) -> None:
        """Queue audio of ``turn_id`` (at ``rate``, resampled to 8 kHz)."""
        if rate != PHONE_RATE:
            resampler = self._resamplers.setdefault(turn_id, StreamResampler(rate, PHONE_RATE))
            pcm = resampler.process(pcm)
        super().add(turn_id, pcm, PHONE_RATE, text_start, text_end)

    def end(self, turn_id: int, rate: int) -> None:
        """The TTS has sent all audio of ``turn_id``: the resampler's tail goes too."""
        resampler = self._resamplers.pop(turn_id, None)
        turn = self.turns.get(turn_id)
        if resampler is not None and turn is not None and turn.spans:
            _, text_start, text_end = turn.spans[-1]
            super().add(turn_id, resampler.flush(), PHONE_RATE, text_start, text_end)
        super().end(turn_id, PHONE_RATE)

    def drop(self, turn_id: int) -> TurnAudio | None:
        """Send nothing more of ``turn_id``; the marks still out will mean nothing."""
        self._resamplers.pop(turn_id, None)
        turn = super().drop(turn_id)
        self._unplayed.clear()
        return turn

    async def _send_chunk(self, frame: bytes) -> None:
        # Called by Playout.run before it moves the timeline past ``frame``.
        self._marks += 1
        name = str(self._marks)
        level = rms(frame)
        end_ms = self._sent_total_ms + len(frame) / _BYTES_PER_MS
        self._unplayed[name] = _Chunk(end_ms, time.perf_counter(), level)
        await self._send_audio(frame)
        await self._send_mark(name)
        if self._estimating:
            self._on_played(level)  # no mark will say when: count it as played now
            self._unplayed.pop(name, None)
