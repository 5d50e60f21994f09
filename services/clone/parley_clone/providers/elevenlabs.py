"""ElevenLabs instant voice cloning through the official ``elevenlabs`` SDK:
``voices.ivc.create`` (``POST /v1/voices/add``, one ``files`` part per sample), then
``voices.get`` (``GET /v1/voices/{id}``) to see that the voice is there, and
``voices.delete`` (``DELETE /v1/voices/{id}``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence

import httpx
from elevenlabs.client import AsyncElevenLabs
from elevenlabs.core.api_error import ApiError
from elevenlabs.core.request_options import RequestOptions
from pydantic import SecretStr

from parley_clone.providers.base import Sample, no_voice_slot, samples_refused
from parley_common.errors import BadInputError, ParleyError
from parley_common.providers import VENDOR_KEY_ENV
from parley_common.vendor_errors import SdkErrors, Vendor, error_kind

__all__ = ["VENDOR", "ElevenLabsCloner"]

log = logging.getLogger(__name__)

VENDOR = Vendor("elevenlabs", "ElevenLabs", VENDOR_KEY_ENV["elevenlabs"], "TTS")
# The SDK's errors (never their text: it holds the response headers).
_SDK_ERRORS = SdkErrors(
    status=(ApiError,), timeouts=(httpx.TimeoutException,), connection=(httpx.TransportError,)
)
DEFAULT_BASE_URL = "https://api.elevenlabs.io"
# What ElevenLabs answers when the samples are the problem; shown, being plain identifiers.
_SAMPLE_KINDS = frozenset({"invalid_audio", "corrupted_audio", "audio_too_short", "invalid_file"})


class ElevenLabsCloner:
    """Clones voices on an ElevenLabs account; a ``VoiceCloner``."""

    name = VENDOR.name

    def __init__(
        self, api_key: SecretStr, *, base_url: str | None = None, timeout_s: float = 120.0
    ) -> None:
        """A client for ``base_url`` (no path)."""
        # Our own HTTP client, so that its timeouts are Parley's and it can be closed.
        self._http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0))
        )
        self._client = AsyncElevenLabs(
            api_key=api_key.get_secret_value(),
            base_url=(base_url or DEFAULT_BASE_URL).rstrip("/"),
            httpx_client=self._http,
            timeout=timeout_s,
        )
        self._timeout_s = timeout_s
        # A clone is not idempotent: a retried upload could make two voices.
        self._options: RequestOptions = {"max_retries": 0}

    async def clone(self, name: str, description: str | None, samples: Sequence[Sample]) -> str:
        """Add the voice; a voice ElevenLabs holds back for verification (its samples match
        a protected voice) is deleted again and refused."""
        files = [(s.filename, s.data, s.mime_type) for s in samples]
        with self._translated("the new voice"):
            added = await self._client.voices.ivc.create(
                name=name,
                files=files,
                description=description,
                request_options=self._options,
            )
        voice_id: str = added.voice_id
        try:
            if added.requires_verification:
                raise BadInputError(
                    "ElevenLabs holds this voice back for verification (its samples match a"
                    " protected voice): clone it from recordings of your own voice",
                    code="voice_needs_verification",
                    provider=VENDOR.name,
                )
            with self._translated("the new voice's details"):
                await self._client.voices.get(voice_id, request_options=self._options)
        except ParleyError:
            await self._delete_quietly(voice_id)
            raise
        return voice_id

    async def delete(self, voice_id: str) -> None:
        """Delete the voice; one ElevenLabs no longer has counts as deleted."""
        try:
            with _SDK_ERRORS.translated(VENDOR, timeout_s=self._timeout_s, waiting_for="a reply"):
                await self._client.voices.delete(voice_id, request_options=self._options)
        except BadInputError as exc:
            cause = exc.__cause__
            if not (isinstance(cause, ApiError) and _is_unknown_voice(cause)):
                raise

    async def aclose(self) -> None:
        """Close the HTTP client's connections."""
        await self._http.aclose()

    async def _delete_quietly(self, voice_id: str) -> None:
        try:
            await self.delete(voice_id)
        except ParleyError:
            # Nothing more to do from here; the name it has at ElevenLabs says whose it was.
            log.warning("a refused clone could not be deleted at ElevenLabs")

    @contextlib.contextmanager
    def _translated(self, waiting_for: str) -> Iterator[None]:
        """The SDK's errors as Parley's, with the refusals of cloning said as such."""
        try:
            with _SDK_ERRORS.translated(VENDOR, timeout_s=self._timeout_s, waiting_for=waiting_for):
                yield
        except BadInputError as exc:
            cause = exc.__cause__
            if not isinstance(cause, ApiError):
                raise
            kind = error_kind(cause.body)
            what = f"HTTP {cause.status_code}"
            if kind == "voice_limit_reached":
                raise no_voice_slot(VENDOR, f"{what} {kind}") from cause
            if cause.status_code in (400, 422):
                shown = f"{what} {kind}" if kind in _SAMPLE_KINDS else what
                raise samples_refused(VENDOR, shown) from cause
            raise


def _is_unknown_voice(error: ApiError) -> bool:
    return error.status_code == 404 or error_kind(error.body) == "voice_not_found"
