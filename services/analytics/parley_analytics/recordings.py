"""The recordings of one session, cut from its real-time subjects: each user utterance
and each assistant reply as a clip of PCM16 mono, with its turn.

A user utterance is the stretch of input audio the STT transcribed: its final transcript
says how long it was (``audio_ms``), and it ended where the speech last stopped (the VAD's
``speech_stopped``, or the push-to-talk release, which the STT also reports as a stop).
Finals and the dialogue's turns come in the same order, so each cut utterance takes the
turn id of the next spoken (not typed) turn. A reply is the TTS audio of a turn, complete
at its end marker, or as far as it got when the turn was interrupted.

Everything here is bounded: the input audio kept covers the longest turn the STT allows,
and a few turns at most wait for their id or their end.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Literal

from parley_common.bus.audio import INPUT_SAMPLE_RATE

Role = Literal["user", "assistant"]

# The STT ends a turn after 30 s; a little more covers the audio it takes before the onset.
MAX_INPUT_S = 35
# A reply longer than this is kept to this length.
MAX_REPLY_S = 300
# Turns waiting for their id (user) or their end (assistant); older ones are dropped.
MAX_PENDING_TURNS = 4
# A gap in the input audio up to this long is silence; a longer jump restarts the buffer.
MAX_GAP_S = 1

_BYTES = 2  # PCM16


@dataclass(frozen=True, slots=True)
class Clip:
    """One utterance or reply, ready to be stored."""

    session_id: str
    turn_id: int
    role: Role
    pcm: bytes
    sample_rate: int
    interrupted: bool = False

    @property
    def duration_s(self) -> float:
        """Its length in seconds."""
        return len(self.pcm) / _BYTES / self.sample_rate


@dataclass(slots=True)
class _Reply:
    rate: int
    pcm: bytearray = field(default_factory=bytearray)


class SessionRecording:
    """The audio of one session while it flows."""

    def __init__(self, session_id: str) -> None:
        self.session_id = session_id
        self._input = bytearray()
        self._input_start = 0  # the sample index of _input's first sample
        self._last_stop_ms: int | None = None
        self._utterances: deque[bytes] = deque(maxlen=MAX_PENDING_TURNS)
        self._replies: OrderedDict[int, _Reply] = OrderedDict()
        # Turns already stored as interrupted: chunks the TTS still sends are late.
        self._cut: deque[int] = deque(maxlen=2 * MAX_PENDING_TURNS)

    @property
    def _input_end(self) -> int:
        return self._input_start + len(self._input) // _BYTES

    # -- the user --------------------------------------------------------------------------
    def audio_in(self, pcm: bytes, offset: int | None) -> None:
        """Input audio at sample ``offset`` of the session (None: right after the last)."""
        if offset is not None and offset != self._input_end:
            gap = offset - self._input_end
            if 0 < gap <= MAX_GAP_S * INPUT_SAMPLE_RATE:
                self._input += bytes(gap * _BYTES)  # frames lost on the way: silence
            else:
                self._input = bytearray()
                self._input_start = offset
        self._input += pcm
        excess = len(self._input) - MAX_INPUT_S * INPUT_SAMPLE_RATE * _BYTES
        if excess > 0:
            del self._input[:excess]
            self._input_start += excess // _BYTES

    def speech_stopped(self, at_ms: int) -> None:
        """The user stopped speaking at ``at_ms`` of the input audio."""
        self._last_stop_ms = at_ms

    def final_transcript(self, audio_ms: int) -> None:
        """The STT transcribed an utterance of ``audio_ms``: cut it from the input audio."""
        end = self._input_end
        if self._last_stop_ms is not None:
            end = min(end, self._last_stop_ms * INPUT_SAMPLE_RATE // 1000)
        self._last_stop_ms = None
        start = max(self._input_start, end - audio_ms * INPUT_SAMPLE_RATE // 1000)
        if end <= start:
            return
        first, last = (start - self._input_start) * _BYTES, (end - self._input_start) * _BYTES
        self._utterances.append(bytes(self._input[first:last]))

    def user_turn(self, turn_id: int) -> Clip | None:
        """The dialogue started spoken turn ``turn_id``: the oldest cut utterance is its."""
        if not self._utterances:
            return None
        pcm = self._utterances.popleft()
        return Clip(self.session_id, turn_id, "user", pcm, INPUT_SAMPLE_RATE)

    # -- the assistant ---------------------------------------------------------------------
    def audio_out(self, turn_id: int, pcm: bytes, rate: int) -> Clip | None:
        """A chunk of turn ``turn_id``'s reply; returns a reply pushed out by too many turns
        in flight (its end never came), as far as it got."""
        if turn_id in self._cut:
            return None
        reply = self._replies.get(turn_id)
        pushed: Clip | None = None
        if reply is None:
            reply = self._replies[turn_id] = _Reply(rate)
            if len(self._replies) > MAX_PENDING_TURNS:
                oldest, left = self._replies.popitem(last=False)
                pushed = self._clip(oldest, left, interrupted=True)
        room = MAX_REPLY_S * reply.rate * _BYTES - len(reply.pcm)
        if room > 0:
            reply.pcm += pcm[:room]
        return pushed

    def audio_out_end(self, turn_id: int) -> Clip | None:
        """Turn ``turn_id``'s reply is complete."""
        reply = self._replies.pop(turn_id, None)
        return self._clip(turn_id, reply, interrupted=False) if reply is not None else None

    def interrupted(self, turn_id: int) -> Clip | None:
        """Turn ``turn_id`` was cut: its reply as synthesised until then."""
        self._cut.append(turn_id)
        reply = self._replies.pop(turn_id, None)
        return self._clip(turn_id, reply, interrupted=True) if reply is not None else None

    def close(self) -> list[Clip]:
        """The session ended: the replies still in flight, as far as they got."""
        clips = [self._clip(t, r, interrupted=True) for t, r in self._replies.items()]
        self._replies.clear()
        return [c for c in clips if c is not None]

    def _clip(self, turn_id: int, reply: _Reply, *, interrupted: bool) -> Clip | None:
        if not reply.pcm:
            return None
        return Clip(
            self.session_id, turn_id, "assistant", bytes(reply.pcm), reply.rate, interrupted
        )
