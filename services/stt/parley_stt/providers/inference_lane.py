"""One lane for every local transcription of the process, in which partials never delay a final.

The local model already uses every core for one transcription, so transcriptions run one at a
time on one thread. What runs next is chosen when the thread is free, not when the work was
asked for: critical work (a final transcript, loading the model) always goes first, and
background work (a partial transcript) only runs when the cores are otherwise free. So a
final asked for while a partial runs waits for that partial at most, never for the partials
queued behind it: those are dropped (they resolve to None), and a partial asked for while a
final is queued or running, or while its answer is probably being computed, is not run.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = ["InferenceLane"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class _Work:
    run: Callable[[], Any]
    future: Future[Any]
    critical: bool


class InferenceLane:
    """Runs callables one at a time on a thread of its own, critical ones first."""

    def __init__(
        self,
        name: str,
        *,
        quiet_after_critical_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``quiet_after_critical_s``: background work asked for within this long after a
        critical job finished is not run either (the cores are busy with what follows a
        final: the answer and its first audio, in other processes)."""
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        self._quiet_s = quiet_after_critical_s
        self._clock = clock
        self._lock = threading.Lock()
        self._critical: deque[_Work] = deque()
        self._background: deque[_Work] = deque()
        self._critical_busy = 0  # critical jobs queued or running
        self._quiet_until = float("-inf")

    def critical(self, run: Callable[[], T]) -> Future[T]:
        """Run ``run`` as soon as the thread is free, before any background work; queued
        background work is dropped. Cancelling the future before it starts drops it."""
        future: Future[T] = Future()
        with self._lock:
            self._critical.append(_Work(run, future, critical=True))
            self._critical_busy += 1
            dropped = list(self._background)
            self._background.clear()
        for work in dropped:
            _skip(work.future)
        self._thread.submit(self._run_next)
        return future

    def background(self, run: Callable[[], T]) -> Future[T | None]:
        """Run ``run`` when no critical work is queued or running; the future resolves to
        None at once if some is (or was, within the quiet time), or later if critical work
        arrives before it starts."""
        future: Future[T | None] = Future()
        with self._lock:
            if self._critical_busy or self._clock() < self._quiet_until:
                future.set_result(None)
                return future
            self._background.append(_Work(run, future, critical=False))
        self._thread.submit(self._run_next)
        return future

    def _run_next(self) -> None:
        # Called once per job added, on the lane's thread: the job run is the most urgent one
        # waiting now, which need not be the one whose submission scheduled this call.
        with self._lock:
            queue = self._critical or self._background
            if not queue:
                return  # its job was dropped
            work = queue.popleft()
        if not work.future.set_running_or_notify_cancel():  # cancelled while queued
            self._finished(work, ran=False)
            return
        try:
            result = work.run()
        except BaseException as exc:  # the caller's to handle, as in any executor
            self._finished(work, ran=True)
            work.future.set_exception(exc)
        else:
            self._finished(work, ran=True)
            work.future.set_result(result)

    def _finished(self, work: _Work, *, ran: bool) -> None:
        # Before the caller hears of it: whoever asks next sees the lane as it now is.
        if work.critical:
            with self._lock:
                self._critical_busy -= 1
                if ran:
                    self._quiet_until = self._clock() + self._quiet_s


def _skip(future: Future[Any]) -> None:
    """Resolve queued background work to None without running it."""
    if future.set_running_or_notify_cancel():
        future.set_result(None)
