"""``speed`` on the in-process providers: Piper's phoneme length scale, the scripted tone."""

from __future__ import annotations

import pytest

from parley_emulators.speech import collect
from parley_tts.providers.piper import MODEL, PiperTtsProvider
from parley_tts.providers.scripted import ScriptedTtsProvider

SENTENCE = "The quick brown fox jumps over the lazy dog."


async def test_piper_speed_scales_the_duration() -> None:
    provider = PiperTtsProvider()
    normal = await collect(provider.synthesize(SENTENCE, None))
    fast = await collect(provider.synthesize(SENTENCE, None, model=MODEL, speed=2.0))
    # Not exactly half: pauses and the tail do not scale with the phonemes.
    assert 0.4 < len(fast) / len(normal) < 0.75


async def test_piper_refuses_another_model_and_a_bad_speed() -> None:
    provider = PiperTtsProvider()
    with pytest.raises(ValueError, match="model"):
        provider.synthesize(SENTENCE, None, model="tts-1")
    with pytest.raises(ValueError, match="speed"):
        provider.synthesize(SENTENCE, None, speed=0)


async def test_scripted_speed_divides_the_duration() -> None:
    provider = ScriptedTtsProvider(ms_per_char=10)
    normal = await collect(provider.synthesize(SENTENCE, None))
    slow = await collect(provider.synthesize(SENTENCE, None, model="ignored", speed=0.5))
    assert len(slow) == 2 * len(normal)
