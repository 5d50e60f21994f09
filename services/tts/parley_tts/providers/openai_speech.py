"""OpenAI speech (``POST /v1/audio/speech``) through the official ``openai`` SDK.

Audio is requested as ``pcm`` (raw 24 kHz PCM16 LE mono, no header) and read as it arrives
with ``with_streaming_response``, so the first bytes play while the rest is generated.
Closing the generator closes the HTTP response, which stops generation at OpenAI. OpenAI has
no voices API: the voices are a built-in table. Billed per input character (tts-1) or per
token (gpt-4o-mini-tts).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import httpx2
import openai
from pydantic import SecretStr

from parley_common.providers import VENDOR_KEY_ENV
from parley_common.vendor_errors import SdkErrors, Vendor
from parley_tts.providers._audio import empty_audio, is_audio
from parley_tts.providers._retry import RetryPolicy, retry_before_first_audio
from parley_tts.providers.base import VoiceInfo

__all__ = ["MODELS", "VOICES", "OpenAiSpeechProvider"]

VENDOR = Vendor("openai", "OpenAI", VENDOR_KEY_ENV["openai"], "TTS")
_SDK_ERRORS = SdkErrors.stainless(openai, httpx2)
SAMPLE_RATE = 24_000  # what OpenAI's "pcm" format is, fixed
DEFAULT_BASE_URL = "https://api.openai.com/v1"
MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts")

_VOICE_TABLE = (
    ("alloy", "neutral"),
    ("ash", "male"),
    ("ballad", "male"),
    ("coral", "female"),
    ("echo", "male"),
    ("fable", "male"),
    ("onyx", "male"),
    ("nova", "female"),
    ("sage", "female"),
    ("shimmer", "female"),
    ("verse", "male"),
    ("marin", "female"),
    ("cedar", "male"),
)
VOICES = tuple(
    VoiceInfo(
        id=voice,
        name=voice.capitalize(),
        language="multilingual",
        gender=gender,
        description="OpenAI built-in voice (marin and cedar with gpt-4o-mini-tts only)"
        if voice in ("marin", "cedar")
        else "OpenAI built-in voice",
    )
    for voice, gender in _VOICE_TABLE
)


class OpenAiSpeechProvider:
    """Speaks through OpenAI's speech endpoint (or any server with the same protocol)."""

    name = VENDOR.name
    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        api_key: SecretStr,
        *,
        base_url: str | None = None,
        model: str = "tts-1",
        voice: str = "alloy",
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        """A client for ``base_url`` (with ``/v1``); the SDK's own retries are off because
        ``retry`` applies Parley's policy (only before the first audio)."""
        self._client = openai.AsyncOpenAI(
            api_key=api_key.get_secret_value(),
            base_url=base_url or DEFAULT_BASE_URL,
            max_retries=0,
            timeout=httpx2.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
        )
        self.model = model
        self.voice = voice
        self._timeout_s = timeout_s
        self._retry = retry or RetryPolicy()

    def synthesize(
        self,
        text: str,
        voice: str | None,
        *,
        model: str | None = None,
        speed: float | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """Stream 24 kHz PCM16 for ``text``; ``speed`` 0.25 to 4 is passed through."""
        if not text.strip():
            return empty_audio()
        params: dict[str, Any] = {
            "input": text,
            "model": model or self.model,
            "voice": voice or self.voice,
            "response_format": "pcm",
        }
        if speed is not None:
            params["speed"] = speed
        return retry_before_first_audio(lambda: self._stream(params), self._retry)

    async def voices(self) -> list[VoiceInfo]:
        """The built-in voice table (OpenAI has no voices API)."""
        return list(VOICES)

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self._client.close()

    async def _stream(self, params: dict[str, Any]) -> AsyncGenerator[bytes, None]:
        with _SDK_ERRORS.translated(
            VENDOR, model=params["model"], timeout_s=self._timeout_s, waiting_for="audio"
        ):
            async with self._client.audio.speech.with_streaming_response.create(
                **params
            ) as response:
                if not is_audio(response.headers.get("content-type")):
                    raise VENDOR.malformed()
                async for chunk in response.iter_bytes():
                    yield chunk
