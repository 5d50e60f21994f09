"""OpenAI's hosted transcription (``whisper`` = S1's name, ``openai``) through the ``openai``
SDK, on the utterance Parley's VAD cut.

``whisper-1`` (and any non-``gpt-`` model of a compatible server) is asked for
``verbose_json`` with word and segment timestamps: words with timings, a confidence from the
segments' ``avg_logprob``, the language the model detected. ``gpt-4o-transcribe`` and
``gpt-4o-mini-transcribe`` answer ``json`` with token logprobs (the confidence) and, when
streaming is on, their text deltas are pushed as partials while the transcription runs.
"""

from __future__ import annotations

import httpx2
import openai
from openai import AsyncOpenAI, Omit
from openai.types.audio import TranscriptionInclude
from pydantic import SecretStr

from parley_common.providers import VENDOR_KEY_ENV
from parley_common.vendor_errors import SdkErrors, Vendor
from parley_stt.providers.base import PartialSink, SttResult
from parley_stt.providers.batch import BatchStream
from parley_stt.providers.whisper_api import MalformedReply, from_logprobs, from_verbose
from parley_stt.providers.whisper_languages import language_code
from parley_stt.settings import CloudSttSettings

__all__ = ["OpenAiSttProvider"]

_SDK_ERRORS = SdkErrors.stainless(openai, httpx2)
_FILENAME = "utterance.wav"
# Only these return token logprobs (the SDK's documentation of ``include``).
_LOGPROB_MODELS = ("gpt-4o-transcribe", "gpt-4o-mini-transcribe")


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
        """Close the SDK's connection pool (at worker shutdown)."""
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
        text = ""
        async with stream:  # leaving early (a cancelled turn) closes the connection
            async for event in stream:
                if event.type == "transcript.text.delta":
                    text += event.delta
                    if sink is not None and text.strip():
                        partial = SttResult(text=text.strip(), is_final=False, language=language)
                        await sink(partial)
                elif event.type == "transcript.text.done":
                    logprobs = (p.logprob for p in event.logprobs or ())
                    return from_logprobs(event.text, logprobs, language)
        raise MalformedReply("the transcription stream ended without transcript.text.done")


def _include(model: str) -> list[TranscriptionInclude] | Omit:
    return ["logprobs"] if model.startswith(_LOGPROB_MODELS) else openai.omit
