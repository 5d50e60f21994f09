"""ElevenLabs instant voice cloning through the official SDK, against the emulator: the
voice is added from the samples and then speaks at their pitch, a used-up account and
refused samples say so, a provider that is down or answers 5xx is a provider failure."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from parley_clone.providers.base import Sample
from parley_clone.providers.elevenlabs import ElevenLabsCloner
from parley_clone.testing import voice_sample
from parley_common.errors import (
    BadInputError,
    ProviderAuthError,
    ProviderFailedError,
    ProviderRateLimitedError,
)
from parley_common.vendor_errors import QUOTA_EXCEEDED
from parley_emulators import elevenlabs
from parley_emulators.base import Fault, running
from parley_emulators.speech import tone
from parley_launcher.embedded.process import free_port

Emulator = tuple[elevenlabs.ElevenLabsState, ElevenLabsCloner, str]


def _samples(pitch_hz: float = 180.0, count: int = 2) -> list[Sample]:
    return [
        Sample(f"sample-{i:02d}.mp3", voice_sample(pitch_hz, 6, "mp3", 44_100), "audio/mpeg")
        for i in range(1, count + 1)
    ]


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    state = elevenlabs.ElevenLabsState()
    async with running(elevenlabs.app(state)) as url:
        cloner = ElevenLabsCloner(SecretStr("test-key"), base_url=url, timeout_s=5)
        try:
            yield state, cloner, url
        finally:
            await cloner.aclose()


async def test_a_clone_is_added_with_every_sample_and_speaks_at_their_pitch(
    emulator: Emulator,
) -> None:
    state, cloner, _ = emulator
    samples = _samples(180.0, count=3)
    voice_id = await cloner.clone("parley-voice-1", "A warm voice", samples)

    sent = state.last("/v1/voices/add")
    assert sent.method == "POST"
    assert sent.body["name"] == "parley-voice-1"
    assert sent.body["description"] == "A warm voice"
    assert sent.body["files"] == [
        {"filename": s.filename, "content_type": "audio/mpeg", "size": len(s.data)} for s in samples
    ]
    assert [f.data for f in state.clones.files[voice_id]] == [s.data for s in samples]
    # The adapter looked the voice up before calling it ready.
    assert state.last(f"/v1/voices/{voice_id}").method == "GET"
    listed = state.voice(voice_id)
    assert listed is not None
    assert listed["category"] == "cloned"
    assert state.clones.pitch(voice_id) == pytest.approx(180.0, abs=2)
    assert state.clones.pitch("JBFqnCBsd6RMkjVDRZzb") == 440.0  # premade voices keep theirs
    assert tone("hi", 16000, 1.0, state.clones.pitch(voice_id)) != tone("hi", 16000)


async def test_delete_removes_the_voice_and_a_voice_already_gone_is_not_an_error(
    emulator: Emulator,
) -> None:
    state, cloner, _ = emulator
    voice_id = await cloner.clone("parley-voice-2", None, _samples())
    await cloner.delete(voice_id)
    assert state.voice(voice_id) is None
    assert voice_id not in state.clones.pitches
    await cloner.delete(voice_id)  # ElevenLabs answers 404 now
    deletes = [r for r in state.requests if r.method == "DELETE"]
    assert len(deletes) == 2


async def test_no_voice_slot_left_is_a_quota_error(emulator: Emulator) -> None:
    state, cloner, _ = emulator
    state.clones.limit = 0
    with pytest.raises(ProviderRateLimitedError) as caught:
        await cloner.clone("parley-voice-3", None, _samples())
    assert caught.value.code == QUOTA_EXCEEDED
    assert "voice_limit_reached" in caught.value.message
    assert len(state.voices) == 2  # the premade ones only


async def test_used_up_credits_are_a_quota_error(emulator: Emulator) -> None:
    state, cloner, _ = emulator
    body = {"detail": {"status": "quota_exceeded", "message": "You have 0 credits left"}}
    state.fail_next(Fault(401, body))
    with pytest.raises(ProviderRateLimitedError) as caught:
        await cloner.clone("parley-voice-4", None, _samples())
    assert caught.value.code == QUOTA_EXCEEDED
    assert "0 credits" not in caught.value.message  # never the vendor's own text


async def test_samples_the_provider_cannot_read_are_refused_as_such(emulator: Emulator) -> None:
    state, cloner, _ = emulator
    not_audio = [Sample("sample-01.mp3", b"This is a text file, not audio.\n" * 64, "audio/mpeg")]
    with pytest.raises(BadInputError) as caught:
        await cloner.clone("parley-voice-5", None, not_audio)
    assert caught.value.code == "samples_refused"
    assert "HTTP 400 invalid_audio" in caught.value.message
    assert len(state.voices) == 2


async def test_a_voice_held_for_verification_is_deleted_and_refused(emulator: Emulator) -> None:
    state, cloner, _ = emulator
    state.fail_next(Fault(200, {"voice_id": "held0000000000000000", "requires_verification": True}))
    with pytest.raises(BadInputError) as caught:
        await cloner.clone("parley-voice-6", None, _samples())
    assert caught.value.code == "voice_needs_verification"
    assert state.last("/v1/voices/held0000000000000000").method == "DELETE"


async def test_a_refused_key_is_an_auth_error(emulator: Emulator) -> None:
    state, _, url = emulator
    wrong = ElevenLabsCloner(SecretStr("wrong-key"), base_url=url, timeout_s=5)
    try:
        with pytest.raises(ProviderAuthError):
            await wrong.clone("parley-voice-7", None, _samples())
    finally:
        await wrong.aclose()
    assert len(state.voices) == 2


async def test_a_failing_or_unreachable_provider_is_a_provider_failure(emulator: Emulator) -> None:
    state, cloner, _ = emulator
    state.fail_next(Fault(503, {"detail": {"status": "service_unavailable", "message": "down"}}))
    with pytest.raises(ProviderFailedError) as caught:
        await cloner.clone("parley-voice-8", None, _samples())
    assert not isinstance(caught.value, ProviderAuthError | ProviderRateLimitedError)
    assert "HTTP 503" in caught.value.message

    down = ElevenLabsCloner(
        SecretStr("test-key"), base_url=f"http://127.0.0.1:{free_port()}", timeout_s=2
    )
    try:
        with pytest.raises(ProviderFailedError) as lost:
            await down.clone("parley-voice-9", None, _samples())
        assert "lost the connection to ElevenLabs" in lost.value.message
    finally:
        await down.aclose()
