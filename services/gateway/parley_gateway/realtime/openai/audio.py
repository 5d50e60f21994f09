"""The Realtime connection's audio parts for the bridge: the input buffer and the output.

Input (``RealtimeAudioIn``): appended audio in the session's input format, converted to
PCM16 16 kHz. With turn detection on it streams to the STT as it comes, as the native
socket's frames do; with it off (manual commit) it is OpenAI's input buffer: held here until
the client commits it (one push-to-talk turn for the STT) or clears it.

Output (``RealtimeAudioOut``): the native ``Playout``, paced a small lead ahead of real time,
whose frames go out as ``response.output_audio.delta`` in the output format. OpenAI's
clients play what they receive and say with ``conversation.item.truncate`` how much was
heard, so on a barge-in everything sent counts as heard until the client truncates (the
memory only ever shortens an answer).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from parley_common.bus.audio import INPUT_SAMPLE_RATE, PushToTalk
from parley_common.errors import BadInputError
from parley_gateway.realtime.audio_in import MAX_UTTERANCE_S, AudioInPublisher
from parley_gateway.realtime.openai.codecs import AudioFormatType, InputConverter, OutputConverter
from parley_gateway.realtime.playout import Playout, TurnAudio, TurnCallback

_BYTES_PER_MS = INPUT_SAMPLE_RATE * 2 // 1000
MAX_BUFFER_BYTES = MAX_UTTERANCE_S * 1000 * _BYTES_PER_MS
# Turns whose audio a truncate may still measure.
RECENT_TURNS = 8

SendAudio = Callable[[bytes], Awaitable[None]]
Report = Callable[[BadInputError], Awaitable[None]]


def duration_ms(pcm: bytes | bytearray) -> float:
    """The length of PCM16 16 kHz audio."""
    return len(pcm) / _BYTES_PER_MS


class RealtimeAudioIn:
    """The input audio buffer (an ``AudioInput``)."""

    def __init__(
        self, publisher: AudioInPublisher, fmt: AudioFormatType, manual: bool, report: Report
    ) -> None:
        self.publisher = publisher
        self.report = report
        self.manual = manual
        self._converter = InputConverter(fmt)
        self._buffer = bytearray()
        self._overflowed = False

    def configure(self, fmt: AudioFormatType, manual: bool) -> None:
        """The session's input format or turn detection changed."""
        if fmt != self._converter.format:
            self._converter = InputConverter(fmt)
        if manual != self.manual:
            self.clear()
        self.manual = manual

    @property
    def buffered_ms(self) -> float:
        """Audio appended since the last commit or clear (manual commit)."""
        return duration_ms(self._buffer)

    async def audio(self, data: bytes) -> None:
        """Appended audio: to the STT now, or into the buffer until it is committed."""
        pcm = self._converter.process(data)
        if not self.manual:
            if pcm:
                await self.publisher.frames(pcm)
            return
        if len(self._buffer) + len(pcm) > MAX_BUFFER_BYTES:
            if not self._overflowed:
                self._overflowed = True
                await self.report(
                    BadInputError(
                        f"the input audio buffer holds at most {MAX_UTTERANCE_S} s (one turn);"
                        " commit it before appending more",
                        code="input_audio_buffer_full",
                    )
                )
            return
        self._buffer += pcm

    async def push_to_talk(self, action: PushToTalk) -> None:
        """A commit (``stop``): the buffer becomes one user turn; with turn detection on,
        the turn being spoken ends now."""
        if action != "stop":
            return
        if not self.manual:
            await self.publisher.marker("stop")
            return
        pcm = bytes(self._buffer) + self._converter.flush()
        self.clear()
        await self.publisher.recording(pcm)

    def clear(self) -> None:
        """Forget the uncommitted audio (audio already streamed to the STT is its own)."""
        self._buffer.clear()
        self._converter.flush()
        self._overflowed = False

    @staticmethod
    def utterance(data: bytes, fmt: AudioFormatType) -> bytes:
        """A whole utterance in ``fmt`` (an item's audio) as PCM16 16 kHz."""
        converter = InputConverter(fmt)
        pcm = converter.process(data) + converter.flush()
        if len(pcm) > MAX_BUFFER_BYTES:
            raise BadInputError(
                f"an item's audio is at most {MAX_UTTERANCE_S} s", code="item_audio_too_long"
            )
        return pcm

    async def recording(self, pcm: bytes) -> None:
        """An utterance (PCM16 16 kHz) as one user turn."""
        await self.publisher.recording(pcm)

    async def run(self) -> None:
        """Nothing runs in the background."""


class RealtimeAudioOut:
    """The assistant's audio as base64 deltas (an ``AudioOutput``). ``wants_audio`` says
    whether a turn's response speaks (text-only responses send none)."""

    def __init__(
        self,
        send: SendAudio,
        on_start: TurnCallback,
        on_first_frame: TurnCallback,
        on_end: TurnCallback,
        *,
        lead_ms: float,
        fmt: AudioFormatType,
        source_rate: int,
        wants_audio: Callable[[int], bool],
    ) -> None:
        self.send = send
        self.wants_audio = wants_audio
        self.source_rate = source_rate
        self._converter = OutputConverter(fmt, source_rate)
        self._playout = Playout(self._send, on_start, on_first_frame, on_end, lead_ms)
        self.turns = self._playout.turns
        self._recent: OrderedDict[int, TurnAudio] = OrderedDict()

    def configure(self, fmt: AudioFormatType) -> None:
        """The session's output format changed (from the next frame on)."""
        if fmt != self._converter.format:
            self._converter = OutputConverter(fmt, self.source_rate)

    def played_ms(self, now: float | None = None) -> float:
        """Past everything sent: the client, which plays it, reports what it played."""
        return math.inf

    def is_playing(self, now: float | None = None) -> bool:
        """Whether the client may still be playing (real time since the audio was sent)."""
        return self._playout.is_playing(now)

    def add(self, turn_id: int, pcm: bytes, rate: int, text_start: int, text_end: int) -> None:
        """Queue audio of ``turn_id`` unless its response is text only."""
        if self.wants_audio(turn_id):
            self._playout.add(turn_id, pcm, rate, text_start, text_end)
            self._remember(turn_id)

    def end(self, turn_id: int, rate: int) -> None:
        """The TTS has sent all audio of ``turn_id``."""
        self._playout.end(turn_id, rate)
        self._remember(turn_id)

    def drop(self, turn_id: int) -> TurnAudio | None:
        """Send nothing more of ``turn_id``."""
        return self._playout.drop(turn_id)

    def turn(self, turn_id: int) -> TurnAudio | None:
        """A recent turn's audio as it was sent, dropped or not (what a truncate measures)."""
        return self._recent.get(turn_id)

    async def run(self) -> None:
        """Send audio until cancelled."""
        await self._playout.run()

    def _remember(self, turn_id: int) -> None:
        turn = self._playout.turns.get(turn_id)
        if turn is None:
            return
        self._recent[turn_id] = turn
        self._recent.move_to_end(turn_id)
        while len(self._recent) > RECENT_TURNS:
            self._recent.popitem(last=False)

    async def _send(self, frame: bytes) -> None:
        data = self._converter.process(frame)
        if data:
            await self.send(data)
