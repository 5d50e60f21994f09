"""OpenAI's hosted transcription (``whisper`` = S1's name, ``openai``) through the ``openai``
SDK, on the utterance Parley's VAD cut.

``whisper-1`` (and any non-``gpt-`` model of a compatible server) is asked for
``verbose_json`` with word and segment timestamps: words with timings, a confidence from the
segments' ``avg_logprob``, the language the model detected. ``gpt-4o-transcribe`` and
``gpt-4o-mini-transcribe`` answer ``json`` with token logprobs (the confidence) and, when
streaming is on, their text deltas are pushed as partials while the transcription runs.
The transcript is returned at ``transcript.text.done``; the rest of that stream is read in the
background, because httpx gives a connection back to its pool only once its body has ended.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx2
import openai
from openai import AsyncOpenAI, AsyncStream, Omit
from openai.types.audio import TranscriptionInclude, TranscriptionStreamEvent
from pydantic import SecretStr

from parley_common.providers import VENDOR_KEY_ENV
from parley_common.vendor_errors import SdkErrors, Vendor
from parley_stt.providers.base import PartialSink, SttResult
from parley_stt.providers.batch import BatchStream
from parley_stt.providers.whisper_api import MalformedReply, from_logprobs, from_verbose
from parley_stt.providers.whisper_languages import language_code
from parley_stt.settings import CloudSttSettings

__all__ = ["OpenAiSttProvider"]

log = logging.getLogger(__name__)

_SDK_ERRORS = SdkErrors.stainless(openai, httpx2)
_FILENAME = "utterance.wav"
# Only these return token logprobs (the SDK's documentation of ``include``).
_LOGPROB_MODELS = ("gpt-4o-transcribe", "gpt-4o-mini-transcribe")
# After ``transcript.text.done`` the body ends at once; a server holding it open longer loses
# the connection rather than keep it busy.
_READ_ON_S = 1.0
# What reading on past the transcript can raise; the transcript is delivered by then.
_READ_ON_ERRORS = (TimeoutError, ValueError, openai.OpenAIError, httpx2.HTTPError)


def _is_gpt(model: str) -> bool:
    return model.startswith("gpt-")


class OpenAiSttProvider:
    """OpenAI's transcription endpoint (or any server speaking its protocol by base URL)."""

    pushes_partials = True  # streamed gpt-* deltas; whisper-1 has none to offer

    def __init__(
        self, name: str, api_key: SecretStr, base_url: str | None, settings: CloudSttSettings
    ) -> None:
        self.name = name
        self._vendor = Vendor(name, "OpenAI", VENDOR_KEY_ENV["openai"], "STT")
        self._settings = settings
        self._client = AsyncOpenAI(
            api_key=api_key.get_secret_value(),
            base_url=base_url,
            timeout=settings.stt_cloud_timeout_s,
            max_retries=settings.stt_cloud_retries,
        )
        self._reading_on: set[asyncio.Task[None]] = set()  # streams past their transcript

    async def open(
        self,
        language: str | None,
        *,
        model: str | None = None,
        on_partial: PartialSink | None = None,
    ) -> BatchStream:
        """A new utterance, transcribed by ``model`` (default ``OPENAI_STT_MODEL``)."""
        chosen = model or self._settings.openai_stt_model
        return BatchStream(self._transcribe, chosen, language_code(language), on_partial)

    async def aclose(self) -> None:
        """Stop reading finished streams, then close the SDK's connection pool (at worker
        shutdown)."""
        for task in self._reading_on:
            task.cancel()
        await asyncio.gather(*self._reading_on, return_exceptions=True)
        await self._client.close()

    async def _transcribe(
        self, wav: bytes, model: str, language: str | None, sink: PartialSink | None
    ) -> SttResult:
        with _SDK_ERRORS.translated(
            self._vendor,
            model=model,
            timeout_s=self._settings.stt_cloud_timeout_s,
            waiting_for="a transcript",
        ):
            if not _is_gpt(model):
                return await self._verbose(wav, model, language)
            if self._settings.openai_stt_stream:
                return await self._streamed(wav, model, language, sink)
            return await self._json(wav, model, language)

    async def _verbose(self, wav: bytes, model: str, language: str | None) -> SttResult:
        reply = await self._client.audio.transcriptions.create(
            file=(_FILENAME, wav, "audio/wav"),
            model=model,
            response_format="verbose_json",
            timestamp_granularities=["word", "segment"],
            language=language or openai.omit,
        )
        if isinstance(reply, str):  # a body that was not JSON
            raise MalformedReply("verbose_json reply is not JSON")
        return from_verbose(reply.to_dict(), language)

    async def _json(self, wav: bytes, model: str, language: str | None) -> SttResult:
        reply = await self._client.audio.transcriptions.create(
            file=(_FILENAME, wav, "audio/wav"),
            model=model,
            response_format="json",
            language=language or openai.omit,
            include=_include(model),
        )
        if isinstance(reply, str):
            raise MalformedReply("json reply is not JSON")
        return from_logprobs(reply.text, (p.logprob for p in reply.logprobs or ()), language)

    async def _streamed(
        self, wav: bytes, model: str, language: str | None, sink: PartialSink | None
    ) -> SttResult:
        stream = await self._client.audio.transcriptions.create(
            file=(_FILENAME, wav, "audio/wav"),
            model=model,
            response_format="json",
            stream=True,
            language=language or openai.omit,
            include=_include(model),
        )
        events = aiter(stream)  # one iterator, read to its end across both steps
        try:
            result = await _until_done(events, language, sink)
        except BaseException:
            await stream.close()  # a failure, or a cancelled turn: drop the connection now
            raise
        task = asyncio.create_task(_read_on(stream, events), name=f"stt-{self.name}-read-on")
        self._reading_on.add(task)
        task.add_done_callback(self._reading_on.discard)
        return result


async def _until_done(
    events: AsyncIterator[TranscriptionStreamEvent], language: str | None, sink: PartialSink | None
) -> SttResult:
    """Deltas pushed as partials, up to the transcript of ``transcript.text.done``."""
    text = ""
    async for event in events:
        if event.type == "transcript.text.delta":
            text += event.delta
            if sink is not None and text.strip():
                await sink(SttResult(text=text.strip(), is_final=False, language=language))
        elif event.type == "transcript.text.done":
            return from_logprobs(event.text, (p.logprob for p in event.logprobs or ()), language)
    raise MalformedReply("the transcription stream ended without transcript.text.done")


async def _read_on(
    stream: AsyncStream[TranscriptionStreamEvent],
    events: AsyncIterator[TranscriptionStreamEvent],
) -> None:
    """The rest of a stream whose transcript is delivered: read to its end, its connection
    goes back to the pool for the next utterance (closed before, httpx would discard it)."""
    try:
        async with asyncio.timeout(_READ_ON_S):
            async for _ in events:
                pass
    except _READ_ON_ERRORS:
        log.debug("the end of a transcription stream was not read", exc_info=True)
    finally:
        await stream.close()


def _include(model: str) -> list[TranscriptionInclude] | Omit:
    return ["logprobs"] if model.startswith(_LOGPROB_MODELS) else openai.omit
