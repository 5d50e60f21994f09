"""Clone samples checked and converted in the gateway: each provider's format, samples joined
for a provider that takes one file, S1's advice as warnings, and the caps."""

from __future__ import annotations

import functools
import io

import av
import pytest

from parley_clone.testing import voice_sample
from parley_common.audio import sniff
from parley_common.audio.formats import InputFormat
from parley_common.contracts.jobs import CLONE_SAMPLE_FORMATS, CloneProvider, SampleFormat
from parley_common.errors import BadInputError
from parley_gateway.clone_samples import (
    MAX_JOINED_S,
    CloneLimits,
    Upload,
    check_uploads,
    prepare_samples,
)


@functools.cache
def _recording(seconds: float) -> bytes:
    return voice_sample(200.0, seconds, "wav", 16_000)


def _upload(seconds: float, name: str = "me.wav") -> Upload:
    return Upload(name, "audio/wav", _recording(seconds))


def _duration_s(data: bytes) -> float:
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.audio[0]
        samples: int = sum(frame.samples for frame in container.decode(stream))
        return samples / stream.rate


async def test_elevenlabs_gets_one_mp3_per_sample_at_44_1_khz() -> None:
    fmt = CLONE_SAMPLE_FORMATS[CloneProvider.ELEVENLABS]
    prepared = await prepare_samples([_upload(6), _upload(65)], fmt, CloneLimits())
    assert [s.filename for s in prepared.samples] == ["sample-01.mp3", "sample-02.mp3"]
    assert [s.duration_s for s in prepared.samples] == pytest.approx([6, 65], abs=0.01)
    start = 0
    for sample in prepared.samples:
        data = prepared.data[start : start + sample.size]
        start += sample.size
        assert sniff(data) is InputFormat.MP3
        with av.open(io.BytesIO(data)) as container:
            assert container.streams.audio[0].rate == 44_100
    assert start == len(prepared.data)
    assert prepared.total_duration_s == pytest.approx(71, abs=0.01)
    assert prepared.warnings == [
        "2 usable samples: 10 or more samples of 1-2 minutes each clone a closer voice.",
        "1 of the samples is shorter than a minute: 1-2 minutes each is recommended.",
    ]


async def test_ten_samples_of_a_minute_or_more_get_no_advice() -> None:
    fmt = SampleFormat(encoding="flac", sample_rate=16_000)
    prepared = await prepare_samples([_upload(60)] * 10, fmt, CloneLimits())
    assert prepared.warnings == []
    assert len(prepared.samples) == 10


async def test_a_one_file_provider_gets_the_samples_joined_up_to_its_limit() -> None:
    fmt = SampleFormat(encoding="wav", sample_rate=16_000, one_file=True)
    prepared = await prepare_samples([_upload(100), _upload(120)], fmt, CloneLimits())
    assert [s.filename for s in prepared.samples] == ["sample-01.wav"]
    assert _duration_s(prepared.data) == pytest.approx(100 + 0.5 + 120, abs=0.05)
    assert prepared.samples[0].duration_s == pytest.approx(220.5)
    assert not [w for w in prepared.warnings if "Only the first" in w]

    many = await prepare_samples([_upload(170) for _ in range(3)], fmt, CloneLimits())
    assert _duration_s(many.data) == pytest.approx(MAX_JOINED_S, abs=0.05)
    assert sum("Only the first 5 minutes" in w for w in many.warnings) == 1


def test_counts_and_sizes_are_refused_before_anything_is_read() -> None:
    limits = CloneLimits(max_samples=3, max_sample_bytes=100, max_total_bytes=250)
    refusals = {}
    for label, sizes in {
        "none": [],
        "four": [10, 10, 10, 10],
        "one too large": [101],
        "too large together": [100, 100, 100],
    }.items():
        with pytest.raises(BadInputError) as caught:
            check_uploads(sizes, limits)
        refusals[label] = caught.value.code
    assert refusals == {
        "none": "no_samples",
        "four": "too_many_samples",
        "one too large": "audio_too_large",
        "too large together": "audio_too_large",
    }
    check_uploads([100, 100, 50], limits)


async def test_a_sample_over_three_minutes_is_not_usable() -> None:
    fmt = CLONE_SAMPLE_FORMATS[CloneProvider.ELEVENLABS]
    with pytest.raises(BadInputError) as caught:
        await prepare_samples([_upload(182, "long.wav")], fmt, CloneLimits())
    assert caught.value.code == "audio_too_long"
    assert caught.value.details[0]["loc"] == ["samples", 0]
