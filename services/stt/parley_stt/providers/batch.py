"""Utterance streams for providers that transcribe whole files (OpenAI, Groq).

The stream buffers the utterance Parley's VAD cut and sends it, as an in-memory WAV, when
``finish`` is called: speculatively when the silence begins, again at the end of the turn. A
request covering the same audio is made once and shared; one nobody waits for any more (the
user spoke again) is cancelled, which closes its HTTP connection at once.
"""

from __future__ import annotations

import asyncio
import io
import wave
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from parley_stt.providers.base import BYTES_PER_SECOND, SAMPLE_RATE, PartialSink, SttResult

__all__ = ["BatchStream", "Transcribe", "wav_bytes"]

#: Sends one utterance (WAV bytes) to a model, in a language (None: detect), and returns its
#: final transcript; may push partials to the sink.
Transcribe = Callable[[bytes, str, str | None, PartialSink | None], Coroutine[Any, Any, SttResult]]

# Under 100 ms there is no word to find and a request would only be billed.
_MIN_BYTES = BYTES_PER_SECOND // 10


def wav_bytes(pcm: bytes, sample_rate: int = SAMPLE_RATE) -> bytes:
    """PCM16 LE mono wrapped in a WAV header, in memory."""
    out = io.BytesIO()
    with wave.open(out, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return out.getvalue()


@dataclass(slots=True)
class _Request:
    """One request in flight (or done), shared by every ``finish`` that wants its audio."""

    size: int
    task: asyncio.Task[SttResult]
    waiters: int = 0

    def usable_for(self, size: int) -> bool:
        if self.task.cancelled():
            return False
        if self.task.done() and self.task.exception() is not None:
            return False  # a failure is answered once; asking again retries
        return self.size == size

    async def wait(self) -> SttResult:
        self.waiters += 1
        try:
            return await asyncio.shield(self.task)
        finally:
            self.waiters -= 1
            if self.waiters == 0 and not self.task.done():
                self.task.cancel()  # nobody wants this audio's transcript any more


class BatchStream:
    """One utterance of a file-transcription provider, for ``model`` in ``language``."""

    def __init__(
        self,
        transcribe: Transcribe,
        model: str,
        language: str | None,
        on_partial: PartialSink | None,
    ) -> None:
        self._transcribe = transcribe
        self._model = model
        self._language = language
        self._on_partial = on_partial
        self._pcm = bytearray()
        self._request: _Request | None = None

    async def feed(self, pcm: bytes) -> None:
        """Append audio to the utterance."""
        self._pcm += pcm

    async def interim(self) -> SttResult | None:
        """None: each partial would be a billed request for the whole utterance so far.
        Providers that stream their answer push its deltas through ``on_partial``."""
        return None

    async def finish(self) -> SttResult:
        """The final transcript of everything fed, from one request per audio length."""
        size = len(self._pcm)
        if size < _MIN_BYTES:
            return SttResult(text="", is_final=True, language=self._language)
        request = self._request
        if request is None or not request.usable_for(size):
            wav = wav_bytes(bytes(self._pcm))
            transcribing = self._transcribe(wav, self._model, self._language, self._on_partial)
            task = asyncio.create_task(transcribing)
            request = self._request = _Request(size=size, task=task)
        return await request.wait()

    async def aclose(self) -> None:
        """Cancel a request still running and drop the audio."""
        request, self._request = self._request, None
        self._pcm = bytearray()
        if request is not None and not request.task.done():
            request.task.cancel()
            await asyncio.gather(request.task, return_exceptions=True)
