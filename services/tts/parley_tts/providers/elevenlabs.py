"""ElevenLabs through the official ``elevenlabs`` SDK: the HTTP stream
(``POST /v1/text-to-speech/{voice}/stream``, raw PCM) per sentence, the input-streaming
WebSocket per turn (``elevenlabs_ws``), and the account's voices from ``GET /v1/voices``,
cached for a while. Billed per character synthesised (credits).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import httpx
from elevenlabs.client import AsyncElevenLabs
from elevenlabs.core.api_error import ApiError
from elevenlabs.core.request_options import RequestOptions
from elevenlabs.types.voice_settings import VoiceSettings
from pydantic import SecretStr

from parley_common.vendor_errors import SdkErrors
from parley_tts.providers._audio import empty_audio, is_audio
from parley_tts.providers._cache import TtlCache
from parley_tts.providers._input_stream import closest_rate
from parley_tts.providers._retry import RetryPolicy, retry_before_first_audio
from parley_tts.providers.base import VoiceInfo
from parley_tts.providers.elevenlabs_ws import VENDOR, ElevenLabsInputStream, connect_input_stream

__all__ = ["PCM_RATES", "ElevenLabsProvider"]

# The SDK's errors (never its text: it holds the response headers); a ValueError is an error
# body that is not JSON or a voices payload that does not validate.
_SDK_ERRORS = SdkErrors(
    status=(ApiError,), timeouts=(httpx.TimeoutException,), connection=(httpx.TransportError,)
)
DEFAULT_BASE_URL = "https://api.elevenlabs.io"
PCM_RATES = (8000, 16000, 22050, 24000, 44100, 48000)  # the pcm_<rate> output formats
SAMPLE_RATE = 24_000  # of the HTTP stream


class ElevenLabsProvider:
    """Speaks with ElevenLabs voices; a ``StreamingTtsProvider``."""

    name = VENDOR.name
    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        api_key: SecretStr,
        *,
        base_url: str | None = None,
        model: str = "eleven_flash_v2_5",
        voice: str = "JBFqnCBsd6RMkjVDRZzb",
        voices_ttl_s: float = 300.0,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        """A client for ``base_url`` (no path)."""
        self._key = api_key
        self._base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        # Our own HTTP client, so that its timeouts are Parley's and it can be closed.
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0))
        )
        self._client = AsyncElevenLabs(
            api_key=api_key.get_secret_value(),
            base_url=self._base_url,
            httpx_client=self._http,
            timeout=timeout_s,  # the SDK passes its own per request, None = no timeout
        )
        self.model = model
        self.voice = voice
        self._timeout_s = timeout_s
        self._retry = retry or RetryPolicy()
        # Retries are Parley's (only before the first audio), not the SDK's.
        self._options: RequestOptions = {"max_retries": 0}
        self._voices: TtlCache[list[VoiceInfo]] = TtlCache(self._fetch_voices, voices_ttl_s)

    def synthesize(
        self,
        text: str,
        voice: str | None,
        *,
        model: str | None = None,
        speed: float | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """Stream 24 kHz PCM16 for ``text`` over HTTP; ``speed`` is a voice setting."""
        if not text.strip():
            return empty_audio()
        voice_id = voice or self.voice
        model_id = model or self.model
        return retry_before_first_audio(
            lambda: self._stream(text, voice_id, model_id, speed), self._retry
        )

    async def open_stream(
        self,
        voice: str | None,
        *,
        model: str | None = None,
        speed: float | None = None,
        sample_rate: int = SAMPLE_RATE,
    ) -> ElevenLabsInputStream:
        """Open the input-streaming socket for one turn, at the pcm rate nearest the one
        wanted."""
        return await connect_input_stream(
            base_url=self._base_url,
            api_key=self._key,
            voice=voice or self.voice,
            model=model or self.model,
            sample_rate=closest_rate(sample_rate, PCM_RATES),
            speed=speed,
            timeout_s=self._timeout_s,
        )

    async def voices(self) -> list[VoiceInfo]:
        """The account's voices, from the API at most once per TTL."""
        return list(await self._voices.get())

    def forget_voices(self) -> None:
        """Drop the cached voices (after one was added or removed)."""
        self._voices.invalidate()

    async def aclose(self) -> None:
        """Close the HTTP client's connections (input streams close their own sockets)."""
        await self._http.aclose()

    async def _stream(
        self, text: str, voice: str, model: str, speed: float | None
    ) -> AsyncGenerator[bytes, None]:
        settings = VoiceSettings(speed=speed) if speed is not None else None
        with _SDK_ERRORS.translated(
            VENDOR, model=model, timeout_s=self._timeout_s, waiting_for="audio"
        ):
            async with self._client.text_to_speech.with_raw_response.stream(
                voice,
                text=text,
                model_id=model,
                output_format="pcm_24000",
                voice_settings=settings,
                request_options=self._options,
            ) as response:
                if not is_audio(response.headers.get("content-type")):
                    raise VENDOR.malformed()
                async for chunk in response.data:
                    yield chunk

    async def _fetch_voices(self) -> list[VoiceInfo]:
        with _SDK_ERRORS.translated(VENDOR, timeout_s=self._timeout_s, waiting_for="its voices"):
            reply = await self._client.voices.get_all(request_options=self._options)
        voices = []
        for voice in reply.voices:
            labels = voice.labels or {}
            voices.append(
                VoiceInfo(
                    id=voice.voice_id,
                    name=voice.name or voice.voice_id,
                    language=labels.get("language"),
                    gender=labels.get("gender"),
                    description=voice.description or labels.get("description"),
                )
            )
        return voices
