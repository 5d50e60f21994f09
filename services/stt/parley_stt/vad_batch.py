"""Silero VAD for every session of a worker in one ONNX call per tick.

Each session owns a :class:`VadStream` (its LSTM state and the last frame's tail) and awaits
the probability of its next 32 ms frame; the :class:`BatchedVad` behind them stacks every
frame waiting at that moment into one call of the row-per-stream model
(:func:`parley_stt.vad.batched_session`), which gives each row exactly what a
:class:`~parley_stt.vad.SileroVad` of its own would. Frames that arrive while a
call runs form the next one, so the batches grow with load (a call can also wait a tick,
``STT_VAD_TICK_MS``, for more sessions' frames). Small batches run on the event loop (a
thread hop would cost more than the call); bigger ones in the batcher's own thread, with the
GIL released by onnxruntime, so the loop keeps relaying audio meanwhile.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from parley_stt.vad import CONTEXT_SAMPLES, FRAME_SAMPLES, SileroVad, batched_session

__all__ = ["BatchedVad", "FrameVad", "VadBatchSettings", "VadStream", "as_frame_vad"]

_HIDDEN = 128


class VadBatchSettings(BaseSettings):
    """``STT_VAD_*``: how the worker's VAD calls are made."""

    model_config = SettingsConfigDict(env_prefix="STT_VAD_", env_file=".env", extra="ignore")

    inline_rows: int = Field(default=4, ge=0, le=10_000)
    """Calls of up to this many rows run on the event loop: below it onnxruntime takes less
    time than handing the call to a thread and back (bench/stt_frames.py measures both)."""
    tick_ms: float = Field(default=0.0, ge=0.0, le=50.0)
    """How long the first frame of a call waits for other sessions' frames. Without a wait a
    call carries the frames that became ready in the same loop iteration (the bus hands over
    all the messages of one socket read at once) plus those that came while the previous
    call ran; a wait makes calls bigger but delays every VAD result (speech onset, barge-in)
    by up to this much, for no clear CPU gain (bench/stt_frames.py), so it is off."""


Samples = npt.NDArray[np.float32]


class FrameVad(Protocol):
    """What a session asks of its VAD: the speech probability of its next 512-sample frame."""

    async def probability(self, frame: Samples) -> float:
        """Speech probability (0..1) of the stream's next frame, float samples in -1..1."""
        ...


class _Unbatched:
    """A stream's own :class:`SileroVad` behind the :class:`FrameVad` interface."""

    def __init__(self, vad: SileroVad) -> None:
        self._vad = vad

    async def probability(self, frame: Samples) -> float:
        return self._vad.probability(frame)


def as_frame_vad(vad: SileroVad | FrameVad) -> FrameVad:
    """``vad`` as a :class:`FrameVad` (a plain SileroVad runs per call, unbatched)."""
    return _Unbatched(vad) if isinstance(vad, SileroVad) else vad


class VadStream:
    """One audio stream's place in a :class:`BatchedVad` (create it with
    :meth:`BatchedVad.stream`). Its frames are answered in the order they were submitted
    (a second one waits for the next call); a stream that is dropped costs the batcher
    nothing."""

    def __init__(self, batcher: BatchedVad) -> None:
        self._batcher = batcher
        self.context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self.h = np.zeros(_HIDDEN, dtype=np.float32)
        self.c = np.zeros(_HIDDEN, dtype=np.float32)

    async def probability(self, frame: Samples) -> float:
        """Speech probability (0..1) of the stream's next frame, float samples in -1..1."""
        if frame.shape != (FRAME_SAMPLES,):
            raise ValueError(f"a VAD frame is {FRAME_SAMPLES} samples, got shape {frame.shape}")
        if self._batcher.alone():
            return self._batcher.now(self, frame)
        return await self._batcher.submit(self, frame)


@dataclass(slots=True)
class _Request:
    stream: VadStream
    frame: Samples
    result: asyncio.Future[float]


class BatchedVad:
    """The VAD of all the sessions of one worker (one per event loop).

    The model loads on the first :meth:`stream` (call that off the loop, or
    :func:`parley_stt.vad.preload` first).
    """

    def __init__(self, settings: VadBatchSettings | None = None) -> None:
        settings = settings if settings is not None else VadBatchSettings()
        self.inline_rows = settings.inline_rows
        self.tick_s = settings.tick_ms / 1000
        self._queue: deque[_Request] = deque()
        # A call is scheduled or running; the frames queued meanwhile go in the next one.
        self._busy = False
        self._executor: ThreadPoolExecutor | None = None
        self._session: Any = None
        self._live = 0  # streams not yet garbage-collected (made in threads, hence the lock)
        self._live_lock = threading.Lock()
        self.calls = 0  # ONNX calls made, and the frames they served: batching at a glance
        self.rows = 0

    def stream(self) -> VadStream:
        """A new stream (blocking on the first call: it may load the model)."""
        if self._session is None:
            self._session = batched_session()
        stream = VadStream(self)
        with self._live_lock:
            self._live += 1
        weakref.finalize(stream, self._forget)
        return stream

    def _forget(self) -> None:
        with self._live_lock:
            self._live -= 1

    def alone(self) -> bool:
        """Whether a frame can have no company: one live stream, nothing queued or running.
        Then it runs at once, without a trip through the loop: a session's burst of frames
        (a message of several, a fallback replay) is handled in one go, as with its own
        SileroVad, and a lone session pays no future per frame."""
        return self._live == 1 and not self._busy

    def now(self, stream: VadStream, frame: Samples) -> float:
        """``stream``'s next frame through the model right now, on the calling thread."""
        inputs = self._inputs([stream], [frame])
        probs, hn, cn = self._run(inputs)
        self._store([stream], inputs, hn, cn)
        return float(probs[0])

    def submit(self, stream: VadStream, frame: Samples) -> asyncio.Future[float]:
        """Queue ``stream``'s next frame for the next call; resolves to its probability."""
        loop = asyncio.get_running_loop()
        request = _Request(stream, frame, loop.create_future())
        self._queue.append(request)
        if not self._busy:
            # Callbacks, not a task per call: with one session this runs every 32 ms.
            self._busy = True
            if self.tick_s > 0:
                loop.call_later(self.tick_s, self._call)
            else:
                loop.call_soon(self._call)
        return request.result

    def close(self) -> None:
        """Stop the batcher's thread (pending frames still finish)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    def _call(self) -> None:
        """One ONNX call for the oldest waiting frame of every stream."""
        batch = self._take()
        if not batch:
            self._busy = False
            return
        try:
            inputs = self._inputs([r.stream for r in batch], [r.frame for r in batch])
            if len(batch) > self.inline_rows:
                if self._executor is None:
                    self._executor = ThreadPoolExecutor(1, thread_name_prefix="vad")
                loop = asyncio.get_running_loop()
                running = loop.run_in_executor(self._executor, self._run, inputs)
                running.add_done_callback(lambda done: self._done(batch, inputs, done))
                return
            outputs = self._run(inputs)
        except Exception as exc:
            self._fail(batch, exc)
        else:
            self._deliver(batch, inputs, *outputs)
        self._next()

    def _done(
        self,
        batch: list[_Request],
        inputs: dict[str, Samples],
        done: asyncio.Future[tuple[Samples, Samples, Samples]],
    ) -> None:
        if done.cancelled():
            self._fail(batch, asyncio.CancelledError())
        elif (exc := done.exception()) is not None:
            self._fail(batch, exc)
        else:
            self._deliver(batch, inputs, *done.result())
        self._next()

    def _next(self) -> None:
        # The frames that came during the call (or a stream's second one) go at once: they
        # have waited a call already.
        if self._queue:
            asyncio.get_running_loop().call_soon(self._call)
        else:
            self._busy = False

    @staticmethod
    def _fail(batch: list[_Request], exc: BaseException) -> None:
        for request in batch:  # every waiting session hears of it
            if not request.result.done():
                request.result.set_exception(exc)

    def _take(self) -> list[_Request]:
        """The oldest waiting frame of each stream: a row's state must have seen the
        stream's previous frame, so a second frame of the same stream waits a call."""
        batch: list[_Request] = []
        later: deque[_Request] = deque()
        seen: set[int] = set()
        for request in self._queue:
            key = id(request.stream)
            if key in seen:
                later.append(request)
            else:
                seen.add(key)
                batch.append(request)
        self._queue = later
        return batch

    @staticmethod
    def _inputs(streams: list[VadStream], batch: list[Samples]) -> dict[str, Samples]:
        frames = np.stack(batch)
        contexts = np.stack([s.context for s in streams])
        return {
            "input": np.concatenate([contexts, frames], axis=1),
            "h": np.stack([s.h for s in streams])[np.newaxis],
            "c": np.stack([s.c for s in streams])[np.newaxis],
        }

    def _run(self, inputs: dict[str, Samples]) -> tuple[Samples, Samples, Samples]:
        probs, hn, cn = self._session.run(None, inputs)
        return probs, hn, cn

    def _store(
        self, streams: list[VadStream], inputs: dict[str, Samples], hn: Samples, cn: Samples
    ) -> None:
        """Each stream's state after its frame: the LSTM's, and the frame's tail."""
        tails = inputs["input"][:, -CONTEXT_SAMPLES:]
        self.calls += 1
        self.rows += len(streams)
        for i, stream in enumerate(streams):
            stream.h, stream.c, stream.context = hn[0, i], cn[0, i], tails[i]

    def _deliver(
        self,
        batch: list[_Request],
        inputs: dict[str, Samples],
        probs: Samples,
        hn: Samples,
        cn: Samples,
    ) -> None:
        self._store([r.stream for r in batch], inputs, hn, cn)
        for i, request in enumerate(batch):
            if not request.result.done():  # its session may have been cancelled meanwhile
                request.result.set_result(float(probs[i]))
