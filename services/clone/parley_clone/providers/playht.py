"""LEGACY: PlayHT instant voice cloning on its historical v2 HTTP API, with plain ``httpx``.

PlayHT's public API was shut down on 2025-12-31 (after Meta acquired PlayAI); this adapter is
for S1 deployments that run a server speaking that protocol (``PLAYHT_BASE_URL``).
``POST /api/v2/cloned-voices/instant`` takes one ``sample_file`` (the gateway joins the
samples into one) and a ``voice_name``, and answers the voice's ``id`` (an ``s3://`` manifest
URL, what its TTS takes as ``voice``); ``DELETE /api/v2/cloned-voices`` with
``{"voice_id"}`` removes it. Errors are ``{"error_message", "error_id"}``.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx
from pydantic import SecretStr

from parley_clone.providers.base import Sample, no_voice_slot, samples_refused
from parley_common.errors import BadInputError, ParleyError
from parley_common.providers import VENDOR_KEY_ENV
from parley_common.vendor_errors import SdkErrors, Vendor

__all__ = ["LEGACY_NOTE", "VENDOR", "PlayHtCloner"]

VENDOR = Vendor("playht", "PlayHT", VENDOR_KEY_ENV["playht"], "TTS")
_HTTP_ERRORS = SdkErrors(timeouts=(httpx.TimeoutException,), connection=(httpx.TransportError,))
LEGACY_NOTE = "legacy: PlayHT's public API was shut down on 2025-12-31"


class PlayHtCloner:
    """LEGACY PlayHT v2 instant cloning (see the module docstring); a ``VoiceCloner``."""

    name = VENDOR.name

    def __init__(
        self, api_key: SecretStr, user_id: str, *, base_url: str, timeout_s: float = 120.0
    ) -> None:
        """A client for the v2 server at ``base_url``."""
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={
                "AUTHORIZATION": f"Bearer {api_key.get_secret_value()}",
                "X-USER-ID": user_id,
            },
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0)),
        )
        self._timeout_s = timeout_s

    async def clone(self, name: str, description: str | None, samples: Sequence[Sample]) -> str:
        """Clone from the one sample file (``description`` has no place in this API)."""
        del description
        if len(samples) != 1:
            raise BadInputError(
                "PlayHT clones from exactly one sample file", code="samples_refused"
            )
        sample = samples[0]
        with _HTTP_ERRORS.translated(VENDOR, timeout_s=self._timeout_s, waiting_for="the voice"):
            response = await self._client.post(
                "/api/v2/cloned-voices/instant",
                data={"voice_name": name},
                files={"sample_file": (sample.filename, sample.data, sample.mime_type)},
            )
            _raise_for_status(response)
            voice_id = response.json().get("id")
        if not isinstance(voice_id, str) or not voice_id:
            raise VENDOR.malformed()
        return voice_id

    async def delete(self, voice_id: str) -> None:
        """Delete the cloned voice; one PlayHT no longer has counts as deleted."""
        with _HTTP_ERRORS.translated(VENDOR, timeout_s=self._timeout_s, waiting_for="a reply"):
            response = await self._client.request(
                "DELETE", "/api/v2/cloned-voices", json={"voice_id": voice_id}
            )
        if response.status_code != 404:
            _raise_for_status(response)

    async def aclose(self) -> None:
        """Close the client's connections."""
        await self._client.aclose()


def _raise_for_status(response: httpx.Response) -> None:
    if response.status_code < 400:
        return
    error_id = _error_id(response)
    what = f"HTTP {response.status_code}"
    failure: ParleyError
    if error_id == "VOICE_LIMIT_REACHED":
        failure = no_voice_slot(VENDOR, f"{what} {error_id}")
    elif response.status_code in (400, 422):
        failure = samples_refused(VENDOR, f"{what} {error_id}" if error_id else what)
    else:
        failure = VENDOR.from_status(response.status_code, response.headers)
    raise failure


def _error_id(response: httpx.Response) -> str | None:
    """PlayHT's ``error_id`` when it is a plain upper-case identifier (it is shown)."""
    try:
        body = response.json()
    except ValueError:
        return None
    error_id = body.get("error_id") if isinstance(body, dict) else None
    if isinstance(error_id, str) and error_id.replace("_", "").isalnum() and error_id.isupper():
        return error_id[:64]
    return None
