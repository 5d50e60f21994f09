"""LEGACY PlayHT instant cloning on its historical v2 protocol, against the emulator."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from parley_clone.providers.base import Sample
from parley_clone.providers.playht import PlayHtCloner
from parley_clone.testing import voice_sample
from parley_common.errors import BadInputError, ProviderAuthError, ProviderRateLimitedError
from parley_common.vendor_errors import QUOTA_EXCEEDED
from parley_emulators import playht
from parley_emulators.base import EmulatorState, running
from parley_emulators.cloning import Clones

Emulator = tuple[EmulatorState, Clones, str]


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    state, clones = EmulatorState(), Clones()
    async with running(playht.app(state, clones)) as url:
        yield state, clones, url


def _cloner(url: str, key: str = "test-key") -> PlayHtCloner:
    return PlayHtCloner(SecretStr(key), playht.USER_ID, base_url=url, timeout_s=5)


def _sample(data: bytes | None = None) -> list[Sample]:
    audio = data if data is not None else voice_sample(150.0, 6, "mp3", 24_000)
    return [Sample("sample-01.mp3", audio, "audio/mpeg")]


async def test_a_clone_from_one_file_speaks_at_its_pitch_and_is_deleted(
    emulator: Emulator,
) -> None:
    state, clones, url = emulator
    cloner = _cloner(url)
    try:
        voice_id = await cloner.clone("parley-voice-1", "ignored", _sample())
        assert voice_id.startswith("s3://")
        assert voice_id.endswith("/manifest.json")
        sent = state.last("/api/v2/cloned-voices/instant").body
        assert sent["voice_name"] == "parley-voice-1"
        assert [f["filename"] for f in sent["sample_file"]] == ["sample-01.mp3"]
        assert clones.pitch(voice_id) == pytest.approx(150.0, abs=2)
        await cloner.delete(voice_id)
        assert voice_id not in clones.pitches
        await cloner.delete(voice_id)  # 404 now: already gone
    finally:
        await cloner.aclose()


async def test_refusals_say_what_was_wrong(emulator: Emulator) -> None:
    _, clones, url = emulator
    cloner = _cloner(url)
    try:
        with pytest.raises(BadInputError) as refused:
            await cloner.clone("parley-voice-2", None, _sample(b"not audio at all" * 100))
        assert refused.value.code == "samples_refused"
        assert "INVALID_SAMPLE" in refused.value.message
        with pytest.raises(BadInputError):
            await cloner.clone("parley-voice-3", None, _sample() * 2)  # one file only
        clones.limit = 0
        with pytest.raises(ProviderRateLimitedError) as full:
            await cloner.clone("parley-voice-4", None, _sample())
        assert full.value.code == QUOTA_EXCEEDED
    finally:
        await cloner.aclose()
    wrong = _cloner(url, key="wrong")
    try:
        with pytest.raises(ProviderAuthError):
            await wrong.clone("parley-voice-5", None, _sample())
    finally:
        await wrong.aclose()
    assert not clones.pitches
