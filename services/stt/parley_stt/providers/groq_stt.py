"""Groq's hosted Whisper (S2's STT) through the ``groq`` SDK, on the utterance Parley's VAD cut.

Groq speaks OpenAI's transcription protocol and answers ``verbose_json`` like whisper-1: words
with timings, segments with ``avg_logprob`` (the confidence), the detected language. It has no
streaming, so there are no partials.
"""

from __future__ import annotations

import groq
import httpx
from groq import AsyncGroq
from pydantic import SecretStr

from parley_common.providers import VENDOR_KEY_ENV
from parley_common.vendor_errors import SdkErrors, Vendor
from parley_stt.providers.base import PartialSink, SttResult
from parley_stt.providers.batch import BatchStream
from parley_stt.providers.whisper_api import MalformedReply, from_verbose
from parley_stt.providers.whisper_languages import language_code
from parley_stt.settings import CloudSttSettings

__all__ = ["GroqSttProvider"]

_SDK_ERRORS = SdkErrors.stainless(groq, httpx)


class GroqSttProvider:
    """Groq Whisper (``whisper-large-v3`` by default, ``whisper-large-v3-turbo``)."""

    name = "groq"
    pushes_partials = False  # none exist; polling interim() costs nothing

    def __init__(
        self, api_key: SecretStr, base_url: str | None, settings: CloudSttSettings
    ) -> None:
        self._vendor = Vendor(self.name, "Groq", VENDOR_KEY_ENV["groq"], "STT")
        self._settings = settings
        self._client = AsyncGroq(
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
        """A new utterance, transcribed by ``model`` (default ``GROQ_STT_MODEL``)."""
        chosen = model or self._settings.groq_stt_model
        return BatchStream(self._transcribe, chosen, language_code(language), on_partial)

    async def aclose(self) -> None:
        """Close the SDK's connection pool (at worker shutdown)."""
        await self._client.close()

    async def _transcribe(
        self, wav: bytes, model: str, language: str | None, sink: PartialSink | None
    ) -> SttResult:
        # Groq does not stream a transcription: nothing is pushed to ``sink``.
        with _SDK_ERRORS.translated(
            self._vendor,
            model=model,
            timeout_s=self._settings.stt_cloud_timeout_s,
            waiting_for="a transcript",
        ):
            reply = await self._client.audio.transcriptions.create(
                file=("utterance.wav", wav, "audio/wav"),
                model=model,
                response_format="verbose_json",
                timestamp_granularities=["word", "segment"],
                language=language or groq.omit,  # omitted = detect
            )
            if isinstance(reply, str):  # the SDK hands back a body that was not JSON as text
                raise MalformedReply("verbose_json reply is not JSON")
            # The SDK types only ``text``; the verbose fields arrive as extra attributes.
            return from_verbose(reply.to_dict(), language)
