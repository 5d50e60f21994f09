"""Chooses the cloning adapter of a custom voice's provider; one instance per process.

Each needs its vendor's key (``<VENDOR>_API_KEY``, endpoint ``<VENDOR>_BASE_URL``), the same
variables the TTS service reads, so a voice is cloned on the account that speaks it.
"""

from __future__ import annotations

import os

from parley_clone.providers.base import VoiceCloner
from parley_clone.settings import CloneSettings
from parley_common.contracts.jobs import CloneProvider
from parley_common.errors import ProviderUnavailableError
from parley_common.providers import ProviderRegistry, api_key, base_url

REGISTRY: ProviderRegistry[VoiceCloner] = ProviderRegistry("clone", CloneProvider)

PLAYHT_USER_ID_ENV = "PLAYHT_USER_ID"


@REGISTRY.register(CloneProvider.ELEVENLABS)
def _elevenlabs() -> VoiceCloner:
    key = api_key("elevenlabs")
    from parley_clone.providers.elevenlabs import ElevenLabsCloner

    timeout_s = CloneSettings().provider_timeout_s
    return ElevenLabsCloner(key, base_url=base_url("elevenlabs"), timeout_s=timeout_s)


@REGISTRY.register(CloneProvider.PLAYHT)
def _playht() -> VoiceCloner:
    from parley_clone.providers.playht import LEGACY_NOTE, PlayHtCloner

    try:
        key = api_key("playht")
    except ProviderUnavailableError as exc:
        raise ProviderUnavailableError(f"{exc.message} ({LEGACY_NOTE})", provider="playht") from exc
    user_id = os.environ.get(PLAYHT_USER_ID_ENV, "").strip()
    url = base_url("playht")
    if not user_id or url is None:
        raise ProviderUnavailableError(
            f"{LEGACY_NOTE}; set {PLAYHT_USER_ID_ENV} and PLAYHT_BASE_URL to a server that"
            " speaks its v2 protocol",
            provider="playht",
        )
    timeout_s = CloneSettings().provider_timeout_s
    return PlayHtCloner(key, user_id, base_url=url, timeout_s=timeout_s)


def get_cloner(name: CloneProvider) -> VoiceCloner:
    """The adapter for ``name``; raises ProviderUnavailableError with the reason."""
    return REGISTRY.get(name)
