"""LEGACY: PlayHT on its historical v2 HTTP stream, with plain ``httpx``.

PlayHT's public API was shut down on 2025-12-31 (after Meta acquired PlayAI). This adapter
exists for S1 deployments that run a server speaking that protocol; it is only available
with ``PLAYHT_API_KEY``, ``PLAYHT_USER_ID`` and ``PLAYHT_BASE_URL`` pointing at such a server,
and its voices are listed as legacy. ``pyht`` hard-codes the old hosts, hence httpx.

``POST /api/v2/tts/stream`` with ``AUTHORIZATION: Bearer <key>`` and ``X-USER-ID`` returns
chunked audio; Parley asks for WAV (PCM16) and strips the header. Billed per character.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Any

import httpx
from pydantic import SecretStr

from parley_common.providers import VENDOR_KEY_ENV
from parley_common.vendor_errors import SdkErrors, Vendor
from parley_tts.providers._audio import WavStream, empty_audio, is_audio
from parley_tts.providers._cache import TtlCache
from parley_tts.providers._retry import RetryPolicy, retry_before_first_audio
from parley_tts.providers.base import VoiceInfo

__all__ = ["LEGACY_NOTE", "PlayHtProvider"]

VENDOR = Vendor("playht", "PlayHT", VENDOR_KEY_ENV["playht"], "TTS")
# Statuses are read by _raise_for_status; a ValueError is JSON or a WAV that does not decode.
_HTTP_ERRORS = SdkErrors(timeouts=(httpx.TimeoutException,), connection=(httpx.TransportError,))
SAMPLE_RATE = 24_000
LEGACY_NOTE = "legacy: PlayHT's public API was shut down on 2025-12-31"


class PlayHtProvider:
    """LEGACY PlayHT v2 adapter (see the module docstring)."""

    name = VENDOR.name
    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        api_key: SecretStr,
        user_id: str,
        *,
        base_url: str,
        model: str = "PlayHT2.0-turbo",
        voice: str = "",
        voices_ttl_s: float = 300.0,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        """A client for the v2 server at ``base_url``; ``model`` is the voice engine."""
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={
                "AUTHORIZATION": f"Bearer {api_key.get_secret_value()}",
                "X-USER-ID": user_id,
            },
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
        )
        self.model = model
        self.voice = voice
        self._timeout_s = timeout_s
        self._retry = retry or RetryPolicy()
        self._voices: TtlCache[list[VoiceInfo]] = TtlCache(self._fetch_voices, voices_ttl_s)

    def synthesize(
        self,
        text: str,
        voice: str | None,
        *,
        model: str | None = None,
        speed: float | None = None,
    ) -> AsyncGenerator[bytes, None]:
        """Stream 24 kHz PCM16 for ``text``; ``model`` is a voice engine
        (``PlayHT2.0-turbo``, ``Play3.0-mini``, ``PlayDialog``)."""
        if not text.strip():
            return empty_audio()
        body: dict[str, Any] = {
            "text": text,
            "voice": voice or self.voice,
            "voice_engine": model or self.model,
            "output_format": "wav",
            "sample_rate": SAMPLE_RATE,
        }
        if speed is not None:
            body["speed"] = speed
        return retry_before_first_audio(lambda: self._stream(body), self._retry)

    async def voices(self) -> list[VoiceInfo]:
        """The server's voices (``GET /api/v2/voices``), marked legacy, cached for a while."""
        return list(await self._voices.get())

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self._client.aclose()

    async def _stream(self, body: dict[str, Any]) -> AsyncGenerator[bytes, None]:
        wav = WavStream(SAMPLE_RATE)
        with _HTTP_ERRORS.translated(
            VENDOR, model=body["voice_engine"], timeout_s=self._timeout_s, waiting_for="audio"
        ):
            async with self._client.stream(
                "POST", "/api/v2/tts/stream", json=body, headers={"accept": "audio/wav"}
            ) as response:
                await _raise_for_status(response, model=body["voice_engine"])
                if not is_audio(response.headers.get("content-type")):
                    raise VENDOR.malformed()
                async for chunk in response.aiter_bytes():
                    pcm = wav.feed(chunk)
                    if pcm:
                        yield pcm

    async def _fetch_voices(self) -> list[VoiceInfo]:
        with _HTTP_ERRORS.translated(VENDOR, timeout_s=self._timeout_s, waiting_for="its voices"):
            response = await self._client.get("/api/v2/voices")
            await _raise_for_status(response)
            listed = response.json()
        if not isinstance(listed, list):
            raise VENDOR.malformed()
        return [_voice(entry) for entry in listed if isinstance(entry, dict) and entry.get("id")]


async def _raise_for_status(response: httpx.Response, *, model: str = "") -> None:
    if response.status_code < 400:
        return
    await response.aread()
    raise VENDOR.from_status(response.status_code, response.headers, model=model)


def _voice(entry: dict[str, Any]) -> VoiceInfo:
    name = str(entry.get("name") or entry["id"])
    return VoiceInfo(
        id=str(entry["id"]),
        name=f"{name} (legacy PlayHT)",
        language=entry.get("language_code") or entry.get("language"),
        gender=entry.get("gender"),
        description=f"PlayHT {entry.get('voice_engine') or 'v2'} voice; {LEGACY_NOTE}.",
    )
