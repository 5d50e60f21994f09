"""Utterance streams for providers that transcribe live over a WebSocket (Deepgram, AssemblyAI).

:class:`LiveStream` owns one connection per utterance and everything the two vendors share:
connecting in the background while audio is buffered, audio chunking, partials pushed as they
arrive, a flush at ``finish`` (Finalize / ForceEndpoint) whose answer is awaited with a
deadline, KeepAlive while the user is silent, failures kept and raised by ``finish``, and an
immediate close. A :class:`Wire` is the vendor's half: its messages and commands.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from parley_common.contracts.bus import Word
from parley_common.errors import ParleyError
from parley_common.vendor_errors import Vendor
from parley_stt.providers.base import BYTES_PER_SECOND, PartialSink, SttResult

__all__ = ["Heard", "LiveStream", "LiveTiming", "Wire", "websocket_origin"]

log = logging.getLogger(__name__)

# Float timings from the provider vs. the byte count we sent: 10 ms of slack.
_COVERAGE_SLACK_S = 0.01


def websocket_origin(origin: str) -> str:
    """The WebSocket origin of an HTTP(S) one (``https://h`` → ``wss://h``); ``ws(s)://`` as is."""
    scheme, sep, rest = origin.rstrip("/").partition("://")
    ws = {"https": "wss", "http": "ws"}.get(scheme.lower(), scheme)
    return f"{ws}{sep}{rest}"


@dataclass(frozen=True, slots=True)
class Heard:
    """What one provider message says about the utterance.

    ``key`` names a piece of the transcript: a later message with the same key replaces it
    (an AssemblyAI turn being formatted). ``final`` pieces no longer change; the one non-final
    piece is the provider's current guess. ``final_until_s`` is how far into the audio every
    word is now final (after a flush: all of it).
    """

    key: int
    text: str
    final: bool
    words: tuple[Word, ...] = ()
    confidence: float | None = None
    language: str | None = None
    final_until_s: float | None = None


class Wire(Protocol):
    """One vendor connection, driven by :class:`LiveStream`."""

    vendor: Vendor

    async def connect(self) -> None:
        """Open the connection; raises a ParleyError (auth, rate limit, unreachable)."""

    def messages(self) -> AsyncIterator[Heard | float]:
        """What the provider says, until it closes cleanly: a :class:`Heard`, or a float
        ``final_until_s`` alone (the answer to a flush that had nothing new). Raises a
        ParleyError when the connection fails or a message cannot be read."""

    async def send_audio(self, pcm: bytes) -> None:
        """Send audio (PCM16 LE mono 16 kHz)."""

    async def flush(self, sent_s: float) -> None:
        """Ask for everything up to ``sent_s`` of audio to be final now."""

    async def keep_alive(self) -> None:
        """Tell the provider the stream is alive while no audio is sent."""

    async def close(self) -> None:
        """End the provider's stream politely, then close the connection."""


@dataclass(frozen=True, slots=True)
class LiveTiming:
    """The deadlines and chunking of a live stream."""

    finalize_timeout_s: float
    keepalive_s: float
    close_timeout_s: float = 0.5
    min_chunk_bytes: int = 0  # smaller pieces are held back (AssemblyAI: 50 ms)
    max_chunk_bytes: int = BYTES_PER_SECOND // 2  # a buffered backlog is sent in pieces


class _State(StrEnum):
    CONNECTING = "connecting"
    OPEN = "open"
    FAILED = "failed"
    CLOSED = "closed"


_NEXT = {
    _State.CONNECTING: frozenset({_State.OPEN, _State.FAILED, _State.CLOSED}),
    _State.OPEN: frozenset({_State.FAILED, _State.CLOSED}),
    _State.FAILED: frozenset({_State.CLOSED}),
    _State.CLOSED: frozenset[_State](),
}


@dataclass(slots=True)
class _Transcript:
    """The utterance as the provider has heard it so far, piece by piece."""

    finals: dict[int, Heard] = field(default_factory=dict)
    guess: Heard | None = None

    def add(self, heard: Heard) -> None:
        if heard.final:
            self.finals[heard.key] = heard
            if self.guess is not None and self.guess.key <= heard.key:
                self.guess = None
        else:
            self.guess = heard

    def result(self, *, final: bool, language: str | None) -> SttResult:
        pieces = [self.finals[k] for k in sorted(self.finals)]
        if not final and self.guess is not None:
            pieces.append(self.guess)
        spoken = [p for p in pieces if p.text.strip()]
        words = tuple(w for p in spoken for w in p.words)
        weights = [(p.confidence, max(1, len(p.words))) for p in spoken if p.confidence is not None]
        total = sum(n for _, n in weights)
        confidence = sum(c * n for c, n in weights) / total if total else None
        detected = next((p.language for p in reversed(spoken) if p.language), None)
        return SttResult(
            text=" ".join(p.text.strip() for p in spoken),
            is_final=final,
            confidence=confidence,
            language=detected or language,
            words=words,
        )


def _pieces(audio: bytes, smallest: int, largest: int) -> list[bytes]:
    """``audio`` cut into pieces of at most ``largest`` bytes, a short tail joined to the piece
    before it (so no piece is under ``smallest`` unless the whole is)."""
    pieces = [audio[start : start + largest] for start in range(0, len(audio), largest)]
    if len(pieces) > 1 and len(pieces[-1]) < smallest:
        pieces[-2:] = [pieces[-2] + pieces[-1]]
    return pieces


class LiveStream:
    """One utterance on one live connection (see the module docstring)."""

    def __init__(
        self,
        wire: Wire,
        language: str | None,
        on_partial: PartialSink | None,
        timing: LiveTiming,
    ) -> None:
        self._wire = wire
        self._language = language
        self._on_partial = on_partial
        self._timing = timing
        self._state = _State.CONNECTING
        self._connected = False  # the wire has a connection to close
        self._failure: ParleyError | None = None
        self._transcript = _Transcript()
        self._unsent = bytearray()  # audio not yet on the wire (connecting, or under a chunk)
        self._fed = 0  # bytes fed in total
        self._sent = 0  # bytes on the wire
        self._fed_at_flush = 0  # what ``_fed`` was at the last flush
        self._flush_s = 0.0  # audio on the wire at the last flush, in seconds
        self._final_until_s = 0.0
        self._last_sent_at = asyncio.get_running_loop().time()
        self._send_lock = asyncio.Lock()
        self._flush_lock = asyncio.Lock()
        self._changed = asyncio.Event()
        self._runner = asyncio.create_task(self._run(), name=f"stt-{wire.vendor.name}")

    # -- the SttStream protocol -------------------------------------------------------------

    async def feed(self, pcm: bytes) -> None:
        """Send (or buffer) audio. A provider failure is not raised here but by ``finish``."""
        if self._state in (_State.FAILED, _State.CLOSED):
            return
        self._fed += len(pcm)
        self._unsent += pcm
        if self._state is _State.OPEN and len(self._unsent) >= self._timing.min_chunk_bytes:
            await self._send_unsent(pad=False)

    async def interim(self) -> SttResult | None:
        """The latest partial: final pieces so far plus the provider's current guess."""
        result = self._transcript.result(final=False, language=self._language)
        return result if result.text else None

    async def finish(self) -> SttResult:
        """Flush (once per new audio) and wait, up to the finalize deadline, for the provider
        to make every word final: one round trip after the flush."""
        if self._fed == 0:
            return SttResult(text="", is_final=True, language=self._language)
        try:
            async with asyncio.timeout(self._timing.finalize_timeout_s):
                await self._settle()
        except TimeoutError:
            raise self._wire.vendor.timed_out(
                self._timing.finalize_timeout_s, what="the final transcript"
            ) from None
        return self._transcript.result(final=True, language=self._language)

    async def aclose(self) -> None:
        """Close the provider's stream now (CloseStream / Terminate, then the socket)."""
        if not self._move(_State.CLOSED):
            return
        try:
            if self._connected:
                async with asyncio.timeout(self._timing.close_timeout_s):
                    await self._wire.close()
        except (ParleyError, TimeoutError, OSError):
            log.debug("closing the %s stream failed", self._wire.vendor.label, exc_info=True)
        finally:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)

    # -- internals ----------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._wire.connect()
            self._connected = True
            async with self._send_lock:
                if not self._move(_State.OPEN):
                    return  # closed while connecting
            if len(self._unsent) >= self._timing.min_chunk_bytes:
                await self._send_unsent(pad=False)
            keep_alive = asyncio.create_task(self._keep_alive())
            try:
                await self._receive()
            finally:
                keep_alive.cancel()
        except ParleyError as exc:
            self._fail(exc)
        except Exception:
            log.exception("the %s stream failed", self._wire.vendor.label)
            self._fail(self._wire.vendor.connection_lost())

    async def _settle(self) -> None:
        await self._until(lambda: self._state is not _State.CONNECTING)
        self._raise_if_failed()
        async with self._flush_lock:  # a concurrent finish waits for this flush's target
            if self._fed > self._fed_at_flush:
                self._fed_at_flush = self._fed
                await self._send_unsent(pad=True)
                self._flush_s = self._sent / BYTES_PER_SECOND
                await self._guard(self._wire.flush(self._flush_s))
            target_s = self._flush_s - _COVERAGE_SLACK_S
        await self._until(lambda: self._final_until_s >= target_s or self._state is not _State.OPEN)
        self._raise_if_failed()

    async def _receive(self) -> None:
        async for message in self._wire.messages():
            if isinstance(message, float):
                self._final_until_s = max(self._final_until_s, message)
            else:
                self._transcript.add(message)
                if message.final_until_s is not None:
                    self._final_until_s = max(self._final_until_s, message.final_until_s)
                await self._push_partial()
            self._notify()
        if self._state is _State.OPEN:
            raise self._wire.vendor.closed(1000, "closed before the utterance ended")

    async def _keep_alive(self) -> None:
        loop = asyncio.get_running_loop()
        while self._state is _State.OPEN:
            idle = loop.time() - self._last_sent_at
            if idle >= self._timing.keepalive_s:
                await self._guard(self._wire.keep_alive())
                self._last_sent_at = loop.time()
                idle = 0.0
            await asyncio.sleep(self._timing.keepalive_s - idle)

    async def _push_partial(self) -> None:
        if self._on_partial is None or self._state is not _State.OPEN:
            return
        partial = await self.interim()
        if partial is None:
            return
        try:
            await self._on_partial(partial)
        except Exception:  # the session's problem; the stream goes on
            log.exception("publishing a partial transcript failed")

    async def _send_unsent(self, *, pad: bool) -> None:
        async with self._send_lock:
            if self._state is not _State.OPEN or not self._unsent:
                return
            pending, self._unsent = bytes(self._unsent), bytearray()
            if pad and len(pending) < self._timing.min_chunk_bytes:
                # The provider rejects short chunks; silence does not change the words.
                pending += bytes(self._timing.min_chunk_bytes - len(pending))
            for piece in _pieces(
                pending, self._timing.min_chunk_bytes, self._timing.max_chunk_bytes
            ):
                await self._guard(self._wire.send_audio(piece))
            self._sent += len(pending)
            self._last_sent_at = asyncio.get_running_loop().time()

    async def _guard(self, sending: Awaitable[None]) -> None:
        """Await a send; a broken connection fails the stream instead of the caller's frame."""
        try:
            await sending
        except ParleyError as exc:
            self._fail(exc)
        except OSError:
            self._fail(self._wire.vendor.connection_lost())

    def _fail(self, error: ParleyError) -> None:
        # Once closed (or already failed), a failure is nobody's concern: the first one stays.
        if _State.FAILED in _NEXT[self._state]:
            self._failure = error
            self._move(_State.FAILED)

    def _move(self, to: _State) -> bool:
        """Change state if ``to`` may follow the current one; wakes every waiter."""
        if to not in _NEXT[self._state]:
            return False
        self._state = to
        self._notify()
        return True

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise self._failure
        if self._state is _State.CLOSED:
            raise self._wire.vendor.closed(1000, "the stream was closed")

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def _until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            await self._changed.wait()
