"""Deepgram Aura through the official ``deepgram-sdk``: REST (``POST /v1/speak``, linear16
without a container, streamed) per sentence and the WebSocket per turn (``deepgram_ws``).

An Aura model names its voice (``aura-asteria-en``, ``aura-2-thalia-en``): a session's
``voice`` picks one of the built-in table's models, ``tts_model`` any Aura model, and with
neither ``DEEPGRAM_TTS_MODEL`` applies. Deepgram has no voices API for Aura: the table is
S2's ten voices. Billed per character synthesised.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import Any

import httpx
from deepgram import AsyncDeepgramClient
from deepgram.core.api_error import ApiError
from deepgram.core.request_options import RequestOptions
from deepgram.environment import DeepgramClientEnvironment
from pydantic import SecretStr

from parley_common.errors import ParleyError
from parley_common.vendor_errors import SdkErrors
from parley_tts.providers._audio import empty_audio, is_audio
from parley_tts.providers._input_stream import closest_rate, http_to_ws
from parley_tts.providers._retry import RetryPolicy, retry_before_first_audio
from parley_tts.providers.base import VoiceInfo
from parley_tts.providers.deepgram_ws import CONNECT_ERRORS, VENDOR, AuraInputStream

__all__ = ["LINEAR16_RATES", "VOICES", "DeepgramAuraProvider"]

# The REST SDK's errors (a ValueError is an error body that is not JSON: malformed).
_SDK_ERRORS = SdkErrors(
    status=(ApiError,), timeouts=(httpx.TimeoutException,), connection=(httpx.TransportError,)
)
DEFAULT_BASE_URL = "https://api.deepgram.com"
LINEAR16_RATES = (8000, 16000, 24000, 32000, 48000)
SAMPLE_RATE = 24_000  # of the REST stream

_VOICE_TABLE = (
    ("aura-asteria-en", "Asteria", "female", "en-US"),
    ("aura-luna-en", "Luna", "female", "en-US"),
    ("aura-stella-en", "Stella", "female", "en-US"),
    ("aura-athena-en", "Athena", "female", "en-GB"),
    ("aura-hera-en", "Hera", "female", "en-US"),
    ("aura-orion-en", "Orion", "male", "en-US"),
    ("aura-arcas-en", "Arcas", "male", "en-US"),
    ("aura-perseus-en", "Perseus", "male", "en-US"),
    ("aura-angus-en", "Angus", "male", "en-IE"),
    ("aura-orpheus-en", "Orpheus", "male", "en-US"),
)
VOICES = tuple(
    VoiceInfo(
        id=model,
        name=name,
        language=language,
        gender=gender,
        description="Deepgram Aura voice",
    )
    for model, name, gender, language in _VOICE_TABLE
)


class DeepgramAuraProvider:
    """Speaks with Deepgram Aura; a ``StreamingTtsProvider``."""

    name = VENDOR.name
    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        api_key: SecretStr,
        *,
        base_url: str | None = None,
        model: str = "aura-asteria-en",
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        """A client for ``base_url`` (REST; the WebSocket is the same host as ws/wss)."""
        rest = (base_url or DEFAULT_BASE_URL).rstrip("/")
        socket = http_to_ws(rest)
        environment = DeepgramClientEnvironment(
            base=rest, production=socket, agent=socket, agent_rest=rest
        )
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0))
        )
        self._client = AsyncDeepgramClient(
            api_key=api_key.get_secret_value(),
            environment=environment,
            httpx_client=self._http,
            timeout=timeout_s,  # the SDK passes its own per request, None = no timeout
        )
        self.model = model
        self._timeout_s = timeout_s
        self._retry = retry or RetryPolicy()
        self._options: RequestOptions = {"max_retries": 0}

    def model_for(self, voice: str | None, model: str | None) -> str:
        """The Aura model to ask for: the session's model, else its voice, else the default."""
        return model or voice or self.model

    def synthesize(
        self,
        text: str,
        voice: str | None,
        *,
        model: str | None = None,
        speed: float | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """Stream 24 kHz linear16 for ``text`` over REST; ``speed`` is Aura-2's rate."""
        if not text.strip():
            return empty_audio()
        chosen = self.model_for(voice, model)
        return retry_before_first_audio(lambda: self._stream(text, chosen, speed), self._retry)

    async def open_stream(
        self,
        voice: str | None,
        *,
        model: str | None = None,
        speed: float | None = None,
        sample_rate: int = SAMPLE_RATE,
    ) -> AuraInputStream:
        """Open Aura's socket for one turn at the linear16 rate nearest the one wanted."""
        rate = closest_rate(sample_rate, LINEAR16_RATES)
        params: dict[str, Any] = {
            "model": self.model_for(voice, model),
            "encoding": "linear16",
            "sample_rate": str(rate),
        }
        if speed is not None:
            params["speed"] = speed
        exits = contextlib.AsyncExitStack()
        try:
            with CONNECT_ERRORS.translated(
                VENDOR, model=params["model"], timeout_s=self._timeout_s, waiting_for="a connection"
            ):
                async with asyncio.timeout(self._timeout_s):
                    socket = await exits.enter_async_context(self._speak().connect(**params))
        except ParleyError:
            await exits.aclose()
            raise
        return AuraInputStream(socket, exits, rate, self._timeout_s)

    async def voices(self) -> list[VoiceInfo]:
        """The built-in table of S2's ten Aura voices."""
        return list(VOICES)

    async def aclose(self) -> None:
        """Close the REST client's connections."""
        await self._http.aclose()

    def _speak(self) -> Any:
        # The SDK's lazily built sub-clients are untyped properties.
        return self._client.speak.v1

    async def _stream(
        self, text: str, model: str, speed: float | None
    ) -> AsyncGenerator[bytes, None]:
        with _SDK_ERRORS.translated(
            VENDOR, model=model, timeout_s=self._timeout_s, waiting_for="audio"
        ):
            async with self._speak().audio.with_raw_response.generate(
                text=text,
                model=model,
                encoding="linear16",
                container="none",
                sample_rate=SAMPLE_RATE,
                speed=speed,
                request_options=self._options,
            ) as response:
                if not is_audio(response.headers.get("content-type")):
                    raise VENDOR.malformed()
                async for chunk in response.data:
                    yield chunk
