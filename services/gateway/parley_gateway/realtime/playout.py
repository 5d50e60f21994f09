"""Sends the assistant's audio to the client close to real time, never more than a small
lead ahead, so that audio not yet played can still be dropped when the user interrupts, or
held back while the gateway judges speech over it (``pause``/``resume``: the frames sent
but not yet played go back to the queue, since the client drops its buffer on pause).

``AudioOutput`` is what the bridge needs of a connection's outgoing audio; ``Playout`` is the
native one (paced PCM frames), ``answer_files.AnswerFiles`` S2's (one whole file per turn).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from parley_common.cancellation import raise_if_cancelling

FRAME_MS = 40  # pacing granularity of outgoing audio, unless the connection chooses another
KEEP_FINISHED_TURNS = 4


@dataclass
class TurnAudio:
    """The audio of one assistant turn as it was queued and sent."""

    turn_id: int
    rate: int
    queued_ms: float = 0.0
    sent_ms: float = 0.0
    timeline_start_ms: float | None = None  # where the turn starts on the playback timeline
    first_sent_at: float | None = None
    pending_frames: int = 0
    ended: bool = False  # the TTS said the turn has no more audio
    finished: bool = False  # every queued frame was sent after the end
    # (turn audio ms where a sentence's audio ends, reply text span of that sentence)
    spans: list[tuple[float, int, int]] = field(default_factory=list)

    def queued(self, pcm: bytes, text_start: int, text_end: int) -> None:
        """``pcm`` (at the turn's rate) speaking reply characters [text_start, text_end)
        was queued after the turn's earlier audio."""
        self.queued_ms += len(pcm) / (self.rate * 2) * 1000
        if self.spans and self.spans[-1][1:] == (text_start, text_end):
            self.spans[-1] = (self.queued_ms, text_start, text_end)
        else:
            self.spans.append((self.queued_ms, text_start, text_end))

    def heard(self, played_ms: float) -> tuple[float, float]:
        """How much of this turn the client has played: (audio ms, reply characters)."""
        if self.timeline_start_ms is None:
            return 0.0, 0.0
        audio = min(max(0.0, played_ms - self.timeline_start_ms), self.sent_ms)
        begin = 0.0
        for end_ms, text_start, text_end in self.spans:
            if audio >= end_ms:
                begin = end_ms
                continue
            fraction = (audio - begin) / max(1e-6, end_ms - begin)
            return audio, text_start + fraction * (text_end - text_start)
        return audio, float(self.spans[-1][2]) if self.spans else 0.0


SendAudio = Callable[[bytes], Awaitable[None]]
TurnCallback = Callable[[TurnAudio], Awaitable[None]]


class AudioOutput(Protocol):
    """A connection's outgoing audio, by assistant turn, on a playback timeline."""

    turns: dict[int, TurnAudio]  # the turns queued or recently sent

    def played_ms(self, now: float | None = None) -> float:
        """Where the client's playback is on the timeline now (estimate)."""

    def is_playing(self, now: float | None = None) -> bool:
        """Whether queued or sent audio has not finished playing yet."""

    def add(self, turn_id: int, pcm: bytes, rate: int, text_start: int, text_end: int) -> None:
        """Queue audio of ``turn_id`` that speaks reply characters [text_start, text_end)."""

    def end(self, turn_id: int, rate: int) -> None:
        """The TTS has sent all audio of ``turn_id``."""

    def drop(self, turn_id: int) -> TurnAudio | None:
        """Send nothing more of ``turn_id``; returns the turn as far as it got."""

    async def run(self) -> None:
        """Send audio until cancelled."""


class Playout:
    """One client's outgoing audio: a queue of frames paced against a playback timeline.

    The timeline is what the client has played so far, estimated as real time since audio
    started flowing; when the queue runs dry (or playout is paused) the client stops
    playing, and the timeline resumes from there with the next frame.
    """

    def __init__(
        self,
        send: SendAudio,
        on_start: TurnCallback,
        on_first_frame: TurnCallback,
        on_end: TurnCallback,
        lead_ms: float,
        frame_ms: int = FRAME_MS,
    ) -> None:
        self.send = send
        self.on_start = on_start
        self.on_first_frame = on_first_frame
        self.on_end = on_end
        self.lead_ms = lead_ms
        # Every frame costs a send through the whole stack: the larger, the cheaper, up to
        # what the client buffers anyway.
        self.frame_ms = frame_ms
        self.turns: dict[int, TurnAudio] = {}
        self._frames: deque[tuple[TurnAudio, bytes]] = deque()
        self._wake = asyncio.Event()
        self._sent_total_ms = 0.0
        self._clock_origin: float | None = None  # perf_counter when timeline was at 0 ms
        # Frames sent that the client may not have played yet: (turn, frame, timeline ms).
        self._in_flight: deque[tuple[TurnAudio, bytes, float]] = deque()
        self.paused: int | None = None  # the turn whose speech over it paused playout

    def played_ms(self, now: float | None = None) -> float:
        """Where the client's playback is on the timeline now (estimate)."""
        if self._clock_origin is None:
            return 0.0
        now = time.perf_counter() if now is None else now
        return min(self._sent_total_ms, (now - self._clock_origin) * 1000)

    def is_playing(self, now: float | None = None) -> bool:
        """Whether queued or sent audio has not finished playing yet."""
        return bool(self._frames) or self.played_ms(now) < self._sent_total_ms

    def add(self, turn_id: int, pcm: bytes, rate: int, text_start: int, text_end: int) -> None:
        """Queue audio of ``turn_id`` that speaks reply characters [text_start, text_end)."""
        turn = self.turns.get(turn_id)
        if turn is None:
            turn = self.turns[turn_id] = TurnAudio(turn_id, rate)
        step = rate * 2 * self.frame_ms // 1000
        for i in range(0, len(pcm), step):
            self._frames.append((turn, pcm[i : i + step]))
            turn.pending_frames += 1
        turn.queued(pcm, text_start, text_end)
        self._wake.set()

    def end(self, turn_id: int, rate: int) -> None:
        """The TTS has sent all audio of ``turn_id``."""
        turn = self.turns.get(turn_id)
        if turn is None:
            turn = self.turns[turn_id] = TurnAudio(turn_id, rate)
        turn.ended = True
        self._wake.set()

    def pause(self, turn_id: int) -> None:
        """Stop playback where it is now, because the user spoke over ``turn_id``: what was
        sent but not played yet (the client drops its buffer) goes back to the queue."""
        played = self.played_ms()
        requeued: list[tuple[TurnAudio, bytes]] = []
        for turn, frame, start_ms in self._in_flight:
            if _end_ms(turn, frame, start_ms) <= played:
                continue
            ms_per_byte = 1000 / (turn.rate * 2)
            head = max(0, int((played - start_ms) / ms_per_byte)) & ~1
            if not requeued:
                self._sent_total_ms = start_ms + head * ms_per_byte
            requeued.append((turn, frame[head:]))
            turn.sent_ms -= (len(frame) - head) * ms_per_byte
            turn.pending_frames += 1
        if not requeued:
            self._sent_total_ms = min(self._sent_total_ms, played)
        self._in_flight.clear()
        self._frames.extendleft(reversed(requeued))
        self.paused = turn_id
        self._wake.set()

    def resume(self) -> None:
        """Playback goes on from where it was paused."""
        self.paused = None
        self._wake.set()

    def drop(self, turn_id: int) -> TurnAudio | None:
        """Forget every unsent frame of ``turn_id``; returns the turn as far as it got."""
        self._frames = deque(f for f in self._frames if f[0].turn_id != turn_id)
        if self.paused == turn_id:
            self.paused = None
        # The client flushes its buffer on "interrupted": nothing of it plays any more.
        self._in_flight.clear()
        played = self.played_ms()
        if self._sent_total_ms > played:
            self._sent_total_ms = played
        self._wake.set()
        return self.turns.pop(turn_id, None)

    async def run(self) -> None:
        """Send frames as the timeline allows, until cancelled."""
        while True:
            raise_if_cancelling()  # a library's wait_for under the client's send may swallow one
            await self._finish_ended_turns()
            if not self._frames or self.paused is not None:
                self._wake.clear()
                await self._wake.wait()
                continue
            now = time.perf_counter()
            if self._clock_origin is None or self.played_ms(now) >= self._sent_total_ms:
                # The client ran dry (or is starting): playback resumes with this frame.
                self._clock_origin = now - self._sent_total_ms / 1000
            ahead = self._sent_total_ms - self.played_ms(now)
            if ahead > self.lead_ms:
                self._wake.clear()
                # asyncio.timeout, not wait_for: no task per wait (3.11's wait_for makes one).
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout((ahead - self.lead_ms) / 1000):
                        await self._wake.wait()
                continue
            while self._in_flight and _end_ms(*self._in_flight[0]) <= self.played_ms(now):
                self._in_flight.popleft()
            turn, frame = self._frames.popleft()
            turn.pending_frames -= 1
            first = turn.timeline_start_ms is None
            if first:
                turn.timeline_start_ms = self._sent_total_ms
                await self.on_start(turn)
            self._in_flight.append((turn, frame, self._sent_total_ms))
            await self.send(frame)
            if first:
                turn.first_sent_at = time.perf_counter()
                await self.on_first_frame(turn)
            ms = len(frame) / (turn.rate * 2) * 1000
            turn.sent_ms += ms
            self._sent_total_ms += ms

    async def _finish_ended_turns(self) -> None:
        for turn in list(self.turns.values()):
            if turn.ended and not turn.finished and turn.pending_frames == 0:
                turn.finished = True
                await self.on_end(turn)
        # Finished turns stay a while for "how much was heard" questions; old ones go.
        finished = [t for t in self.turns.values() if t.finished]
        for turn in finished[:-KEEP_FINISHED_TURNS]:
            del self.turns[turn.turn_id]


def _end_ms(turn: TurnAudio, frame: bytes, start_ms: float) -> float:
    """Where ``frame`` of ``turn``, sent at ``start_ms`` of the timeline, ends on it."""
    return start_ms + len(frame) / (turn.rate * 2) * 1000
