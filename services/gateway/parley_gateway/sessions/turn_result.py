"""One spoken turn of a session taken as a whole: its result collected from the session's
subjects (``TurnCollector``), and its answer's audio made one file (``AnswerFormat``).

S2's REST voice chat feeds a recording into the session and waits here for what the
session's own STT, dialogue and TTS workers make of it; S2's WebSocket sends every answer
as one file encoded by the same ``AnswerFormat``.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from types import TracebackType

from nats.aio.subscription import Subscription

from parley_common.audio import (
    AudioFormat,
    EncodedAudio,
    apply_effects_async,
    encodable_rate,
    encode_pcm_async,
)
from parley_common.bus import Bus, Received
from parley_common.bus.audio import AudioOutMeta
from parley_common.contracts import subjects
from parley_common.contracts.bus import (
    Interrupt,
    InterruptReason,
    LatencyStages,
    ReplyDone,
    ServiceError,
    Transcript,
    TurnLatency,
    UserText,
    interrupt_adapter,
    reply_adapter,
    status_adapter,
    transcript_adapter,
)
from parley_common.contracts.subjects import SessionChannel
from parley_common.errors import ConflictError, ParleyError, ProviderFailedError


@dataclass(frozen=True)
class AnswerFormat:
    """How an answer is delivered as a file: its encoding, and the pitch the gateway applies
    (no TTS provider has one) in semitones."""

    encoding: AudioFormat
    pitch: float = 0.0

    async def encode(self, pcm: bytes, rate: int) -> EncodedAudio:
        """The whole answer as one file, at ``rate`` or the nearest rate its encoding takes."""
        if self.pitch:
            pcm = await apply_effects_async(pcm, rate, pitch=self.pitch)
        return await encode_pcm_async(pcm, rate, self.encoding, encodable_rate(self.encoding, rate))


@dataclass(frozen=True)
class TurnResult:
    """What a session made of one spoken turn; the ``*_at`` are ``perf_counter`` times of
    when each part reached the gateway."""

    turn_id: int
    transcript: Transcript
    reply_text: str
    pcm: bytes  # the whole answer, PCM16 LE mono at sample_rate
    sample_rate: int
    stages: LatencyStages  # what the workers measured
    transcript_at: float
    reply_at: float
    audio_at: float


@dataclass
class _Turn:
    """What arrived about one turn of the session (before the collected turn is known,
    every turn that may be it is tracked)."""

    spoken: str | None = None  # the user's words, when the turn was spoken
    reply: tuple[ReplyDone, float] | None = None
    rate: int = 0
    pcm: bytearray = field(default_factory=bytearray)
    audio_at: float | None = None  # when its last audio arrived
    stages: LatencyStages = field(default_factory=LatencyStages)
    error: ParleyError | None = None


class TurnCollector:
    """Waits for the next spoken turn of a session: its final transcript, the answer's text
    and every chunk of its audio. Enter it (``async with``) before the turn's audio is
    published; ``result()`` raises the ParleyError a worker reported for the turn, or a
    ConflictError when a newer message of the conversation interrupted it."""

    def __init__(self, bus: Bus, session_id: str) -> None:
        self.bus = bus
        self.sid = session_id
        self._subs: list[Subscription] = []
        self._done: asyncio.Future[TurnResult] = asyncio.get_running_loop().create_future()
        self._transcript: tuple[Transcript, float] | None = None
        self._turn_id: int | None = None  # the collected turn, once known
        self._turns: dict[int, _Turn] = {}
        self._progress_at = time.monotonic()  # when anything of the turn last arrived

    async def __aenter__(self) -> TurnCollector:
        handlers = {
            SessionChannel.TRANSCRIPT: self._on_transcript,
            SessionChannel.REPLY: self._on_reply,
            SessionChannel.AUDIO_OUT: self._on_audio,
            SessionChannel.STATUS: self._on_status,
            SessionChannel.INTERRUPT: self._on_interrupt,
        }
        for channel, handler in handlers.items():
            self._subs.append(
                await self.bus.subscribe(subjects.session(self.sid, channel), handler)
            )
        await self.bus.flush()  # subscribed on the server before the turn's audio goes out
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()
        if not self._done.done():
            self._done.cancel()

    async def result(self, idle_s: float) -> TurnResult:
        """The turn, once its last audio arrived; TimeoutError when nothing of it arrives
        for ``idle_s`` (a long answer takes as long as it takes to speak: only a silent
        pipeline is given up on)."""
        while True:
            remaining = self._progress_at + idle_s - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            try:
                return await asyncio.wait_for(asyncio.shield(self._done), remaining)
            except TimeoutError:
                continue  # something arrived meanwhile: wait again from then

    @property
    def waiting_for(self) -> str:
        """What of the turn has not arrived yet, for a timeout's message."""
        if self._transcript is None:
            return "the transcript"
        turn = self._turns.get(self._turn_id) if self._turn_id is not None else None
        if turn is None:
            return "the dialogue to take the turn"
        return "the answer's text" if turn.reply is None else "the answer's audio"

    def _turn(self, turn_id: int) -> _Turn | None:
        """The state of ``turn_id``, or None once another turn is known to be the one."""
        if self._turn_id is not None and turn_id != self._turn_id:
            return None
        self._progress_at = time.monotonic()
        return self._turns.setdefault(turn_id, _Turn())

    def _fail(self, error: ParleyError) -> None:
        if not self._done.done():
            self._done.set_exception(error)

    def _check(self) -> None:
        if self._transcript is None or self._done.done():
            return
        transcript, transcript_at = self._transcript
        if self._turn_id is None:
            # The dialogue starts the turn with the transcript's very words.
            found = [t for t, turn in self._turns.items() if turn.spoken == transcript.text]
            if not found:
                return
            self._turn_id = found[0]
            self._turns = {found[0]: self._turns[found[0]]}
        turn = self._turns[self._turn_id]
        if turn.error is not None:
            self._fail(turn.error)
        elif turn.reply is not None and turn.audio_at is not None:
            reply, reply_at = turn.reply
            self._done.set_result(
                TurnResult(
                    turn_id=self._turn_id,
                    transcript=transcript,
                    reply_text=reply.text,
                    pcm=bytes(turn.pcm),
                    sample_rate=turn.rate,
                    stages=turn.stages,
                    transcript_at=transcript_at,
                    reply_at=reply_at,
                    audio_at=turn.audio_at,
                )
            )

    async def _on_transcript(self, msg: Received) -> None:
        transcript = msg.decode(transcript_adapter)
        self._progress_at = time.monotonic()  # partials too: the STT is hearing the turn
        if transcript.is_final and transcript.text and self._transcript is None:
            self._transcript = (transcript, time.perf_counter())
            self._check()

    async def _on_reply(self, msg: Received) -> None:
        event = msg.decode(reply_adapter)
        turn = self._turn(msg.meta.turn_id)
        if turn is None:
            return
        if isinstance(event, UserText):
            if not event.typed:
                turn.spoken = event.text
        elif isinstance(event, ReplyDone):
            turn.reply = (event, time.perf_counter())
            if event.interrupted:
                turn.error = _interrupted()
            elif event.finish_reason == "error" and turn.error is None:
                turn.error = ProviderFailedError(
                    "the assistant could not answer", code="llm_failed"
                )
        self._check()

    async def _on_audio(self, msg: Received) -> None:
        turn = self._turn(msg.meta.turn_id)
        if turn is None:
            return
        meta = AudioOutMeta.parse(msg.meta.extra)
        turn.rate = meta.rate
        if meta.end:
            turn.audio_at = time.perf_counter()
            self._check()
        else:
            turn.pcm += msg.data

    async def _on_status(self, msg: Received) -> None:
        event = msg.decode(status_adapter)
        if isinstance(event, ServiceError):
            if event.severity != "error":
                return
            error = ProviderFailedError(
                event.message, code=f"{event.service}_{event.code}", provider=event.provider
            )
            if msg.meta.turn_id == 0:  # the STT's: it knows no turn, the turn never started
                self._fail(error)
            elif (turn := self._turn(msg.meta.turn_id)) is not None:
                turn.error = error
                self._check()
        elif isinstance(event, TurnLatency) and (turn := self._turn(event.turn_id)) is not None:
            turn.stages = turn.stages.merged(event.stages)

    async def _on_interrupt(self, msg: Received) -> None:
        event = msg.decode(interrupt_adapter)
        if isinstance(event, Interrupt) and event.reason is InterruptReason.SPECULATION:
            self._turns.pop(event.turn_id, None)  # a dropped speculative answer: not the turn
        elif isinstance(event, Interrupt) and (turn := self._turn(event.turn_id)) is not None:
            turn.error = _interrupted()
            self._check()


def _interrupted() -> ConflictError:
    return ConflictError(
        "a newer message of the conversation interrupted this answer", code="turn_interrupted"
    )
