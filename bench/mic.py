"""A microphone for a benchmark call: sends 20 ms frames in real time forever (silence when
there is nothing to say), and tells when given audio went out."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque

import numpy as np

from bench.audio import FRAME_MS, frames, silence
from bench.call import Call

_SILENCE = silence(FRAME_MS)


def voiced_span_ms(pcm: bytes, threshold: float = 500.0) -> tuple[float, float]:
    """(first, last) millisecond of ``pcm`` whose 10 ms energy is above ``threshold``."""
    samples = np.frombuffer(pcm, dtype=np.int16).astype(np.float32)
    window = 160
    rms = [
        float(np.sqrt(np.mean(samples[i : i + window] ** 2)))
        for i in range(0, len(samples) - window, window)
    ]
    loud = [i for i, value in enumerate(rms) if value > threshold]
    return (loud[0] * 10.0, (loud[-1] + 1) * 10.0) if loud else (0.0, 0.0)


class Microphone:
    """Streams a call's uplink in real time; ``say`` queues an utterance. With ``lateness``,
    how late each frame went out (ms after its due time) is appended to it: the load
    generator's own pacing, which a benchmark must check before it trusts its numbers."""

    def __init__(self, call: Call, lateness: list[float] | None = None) -> None:
        self.call = call
        self.lateness = lateness
        self._queue: deque[tuple[bytes, asyncio.Future[float] | None]] = deque()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Microphone:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def say(self, pcm: bytes, mark_ms: float) -> asyncio.Future[float]:
        """Queue ``pcm``; the future resolves to when the frame holding ``mark_ms`` was sent."""
        done: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        mark_frame = int(mark_ms // FRAME_MS)
        for i, frame in enumerate(frames(pcm)):
            self._queue.append((frame, done if i == mark_frame else None))
        return done

    async def _run(self) -> None:
        started = time.perf_counter()
        sent = 0
        while True:
            frame, marker = self._queue.popleft() if self._queue else (_SILENCE, None)
            await self.call.ws.send(frame)
            if self.lateness is not None:
                due = started + (sent * FRAME_MS) / 1000
                self.lateness.append(max(0.0, time.perf_counter() - due) * 1000)
            if marker is not None and not marker.done():
                marker.set_result(time.perf_counter())
            sent += 1
            delay = started + sent * FRAME_MS / 1000 - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
