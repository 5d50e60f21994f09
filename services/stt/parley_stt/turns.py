"""Turn detection from per-frame voice probabilities: when speech starts, when it stops, and
when the silence after it is long enough to end the user's turn."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Literal

import numpy as np
import numpy.typing as npt

FRAME_MS = 32  # Silero VAD frames: 512 samples at 16 kHz
MAX_BACKDATE_MS = 2 * FRAME_MS


class Phase(Enum):
    """Where the user is in a turn."""

    IDLE = "idle"  # no speech since the last turn ended
    SPEAKING = "speaking"
    TRAILING = "trailing"  # silence after speech, not yet long enough to end the turn


@dataclass(frozen=True, slots=True)
class TurnEvent:
    """Something the detector noticed at ``at_ms`` (offset in the session's input audio)."""

    kind: Literal["speech_started", "speech_stopped", "end_of_turn"]
    at_ms: int
    speech_ms: int = 0


class TurnDetector:
    """A hysteresis state machine over VAD probabilities.

    Speech starts on the first frame above ``start_threshold`` (barge-in latency depends on
    it); it stops after ``hangover_ms`` below ``stop_threshold`` (pauses between words are
    shorter), and the stop is dated at the first quiet frame, from which the turn's silence
    is counted, so ending a turn takes exactly ``silence_ms`` of silence.

    With ``max_silence_ms`` (semantic end of turn) each pause waits for :meth:`decide` to say
    how much silence ends it: the end-of-turn model's answer, asked for when speech stops.
    Until the answer comes only ``max_silence_ms`` of silence ends the turn, so audio that
    arrives faster than real time is judged the same as audio that arrives in real time.
    A decided pause never ends on a frame the VAD already hears the voice coming back in
    (between the two thresholds): Silero rises over two or three frames at an onset, and
    counting those as silence let a 200 ms "complete" wait end a turn on the first
    syllable after a short dip ("What | colour is the sky?"). Only ``max_silence_ms``
    ends the pause on such a frame.
    """

    def __init__(
        self,
        silence_ms: int,
        start_threshold: float = 0.5,
        stop_threshold: float = 0.35,
        hangover_ms: int = 96,
        max_silence_ms: int | None = None,
    ) -> None:
        self.silence_ms = silence_ms
        self.start_threshold = start_threshold
        self.stop_threshold = stop_threshold
        self.hangover_ms = hangover_ms
        self.max_silence_ms = max_silence_ms
        self.phase = Phase.IDLE
        # Counts the pauses, so that a late decision about one that is over changes nothing.
        self.pause = 0
        self._pause_silence_ms: int | None = None  # None: this pause awaits its decision
        self._resuming = False  # the last frame of the pause was neither quiet nor loud
        self._heard_until_ms = 0
        self._speech_start_ms = 0
        self._quiet_since_ms: int | None = None

    def push(
        self, offset_ms: int, probability: float, voiced_until_ms: int | None = None
    ) -> list[TurnEvent]:
        """Feed one frame starting at ``offset_ms``; returns what happened.

        ``voiced_until_ms`` is where the signal's energy last stood above the speech floor.
        Silero's window makes it notice the end of speech one or two frames late, so the
        silence is dated from the energy's fall when that is at most ``MAX_BACKDATE_MS``
        earlier: the user still gets the full silence threshold, and not the VAD's lag on
        top of it.
        """
        self._heard_until_ms = offset_ms + FRAME_MS
        loud = probability >= self.start_threshold
        quiet = probability < self.stop_threshold
        if self.phase is Phase.IDLE:
            if loud:
                self.phase = Phase.SPEAKING
                self._speech_start_ms = offset_ms
                self._quiet_since_ms = None
                return [TurnEvent("speech_started", offset_ms)]
            return []
        if self.phase is Phase.SPEAKING:
            if not quiet:
                self._quiet_since_ms = None
                return []
            if self._quiet_since_ms is None:
                self._quiet_since_ms = offset_ms
                if voiced_until_ms is not None and voiced_until_ms < offset_ms:
                    self._quiet_since_ms = max(
                        voiced_until_ms, offset_ms - MAX_BACKDATE_MS, self._speech_start_ms
                    )
            if offset_ms + FRAME_MS - self._quiet_since_ms >= self.hangover_ms:
                self.phase = Phase.TRAILING
                self.pause += 1
                self._pause_silence_ms = self.silence_ms if self.max_silence_ms is None else None
                self._resuming = False
                stopped = self._quiet_since_ms
                return [TurnEvent("speech_stopped", stopped, stopped - self._speech_start_ms)]
            return []
        # TRAILING
        assert self._quiet_since_ms is not None
        if loud:
            self.phase = Phase.SPEAKING
            self._quiet_since_ms = None
            return [TurnEvent("speech_started", offset_ms)]
        self._resuming = not quiet
        heard_ms = offset_ms + FRAME_MS - self._quiet_since_ms
        if heard_ms >= self._required_ms() and (quiet or heard_ms >= self._longest_ms()):
            self.phase = Phase.IDLE
            return [TurnEvent("end_of_turn", offset_ms + FRAME_MS)]
        return []

    def _required_ms(self) -> int:
        """The silence that ends the current pause (the longest until it is decided)."""
        if self._pause_silence_ms is None:
            return self._longest_ms()
        return self._pause_silence_ms

    def _longest_ms(self) -> int:
        return self.silence_ms if self.max_silence_ms is None else self.max_silence_ms

    def decide(self, pause: int, silence_ms: int) -> list[TurnEvent]:
        """Pause number ``pause`` ends after ``silence_ms`` of silence: the end-of-turn
        model's answer. The turn ends now when that much silence has been heard already (and
        the last frame was quiet); an answer about a pause that is over (speech resumed, the
        turn ended) changes nothing."""
        if self.phase is not Phase.TRAILING or pause != self.pause:
            return []
        assert self._quiet_since_ms is not None
        self._pause_silence_ms = silence_ms
        if self._heard_until_ms - self._quiet_since_ms >= silence_ms and not self._resuming:
            self.phase = Phase.IDLE
            return [TurnEvent("end_of_turn", self._heard_until_ms)]
        return []

    def force_start(self, offset_ms: int) -> list[TurnEvent]:
        """Push-to-talk pressed: the user is speaking whatever the VAD says."""
        if self.phase is Phase.SPEAKING:
            return []
        was_idle = self.phase is Phase.IDLE
        self.phase = Phase.SPEAKING
        self._quiet_since_ms = None
        if was_idle:
            self._speech_start_ms = offset_ms
        return [TurnEvent("speech_started", offset_ms)]

    def force_end(self, offset_ms: int) -> list[TurnEvent]:
        """Push-to-talk released: the turn ends now."""
        if self.phase is Phase.IDLE:
            return []
        events = []
        if self.phase is Phase.SPEAKING:
            events.append(TurnEvent("speech_stopped", offset_ms, offset_ms - self._speech_start_ms))
        self.phase = Phase.IDLE
        self._quiet_since_ms = None
        events.append(TurnEvent("end_of_turn", offset_ms))
        return events


class EnergyEdge:
    """Where the speech's energy last stood above a floor relative to the utterance's
    loudness, to 10 ms: a sharper end-of-speech time than the VAD's."""

    WINDOW = 160  # 10 ms at 16 kHz
    RELATIVE_FLOOR = 0.1  # of the loudest 10 ms heard while speaking
    ABSOLUTE_FLOOR = 0.003  # never below this (about -50 dBFS)

    def __init__(self) -> None:
        self.voiced_until_ms: int | None = None
        self._peak = 0.0

    def new_utterance(self) -> None:
        """Forget the last utterance's loudness."""
        self._peak = 0.0

    def push(self, offset_ms: int, samples: npt.NDArray[np.float32], speaking: bool) -> None:
        """Take one frame starting at ``offset_ms``."""
        # Every session runs this on every frame: the fewest numpy calls on three windows
        # (np.mean's own reduction and division, so the same float32 values), the rest on
        # Python floats.
        usable = len(samples) - len(samples) % self.WINDOW
        windows = samples[:usable].reshape(-1, self.WINDOW)
        rms = np.sqrt(np.add.reduce(windows * windows, axis=1) / self.WINDOW).tolist()
        if speaking and rms:
            self._peak = max(self._peak, max(rms))
        # Compared in float32, as numpy compares a float32 array with a Python float.
        floor = float(np.float32(max(self.ABSOLUTE_FLOOR, self._peak * self.RELATIVE_FLOOR)))
        for window in range(len(rms) - 1, -1, -1):
            if rms[window] > floor:
                self.voiced_until_ms = offset_ms + (window + 1) * 10
                return
