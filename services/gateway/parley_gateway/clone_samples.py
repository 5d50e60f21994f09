"""Voice samples checked and converted before anything is sent out (``POST /api/voice/clone``).

Checks, in order, so that nothing is decoded for a request that cannot succeed: at least one
file and at most ``CLONE_MAX_SAMPLES``; each at most ``CLONE_MAX_SAMPLE_BYTES`` and all
together ``CLONE_MAX_TOTAL_BYTES``. Then each file on its own: real audio (its container
sniffed from its bytes, its name and type not claiming another, decodable), 5 s to 3 min
long, not silent. A file that fails is skipped with a warning; when none is usable the
request is refused with each file's reason. Fewer than S1's recommended 10 samples, or
samples shorter than its recommended 1-2 minutes, are warned about.

Usable samples are re-encoded to what the voice's provider takes (``CLONE_SAMPLE_FORMATS``:
tags dropped, one file per sample or all joined into one) and named ``sample-NN``, never by
the user's file names. Nothing is written to disk; the bytes live as long as the request.
"""

from __future__ import annotations

import asyncio
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from parley_common.audio import DecodeLimits, decode_upload_async, encode_pcm_async
from parley_common.audio.decode import AUDIO_TOO_LARGE
from parley_common.contracts.jobs import CloneSample, SampleFormat
from parley_common.errors import BadInputError
from parley_common.settings import positive_int_env

__all__ = ["CloneLimits", "PreparedSamples", "Upload", "check_uploads", "prepare_samples"]

MIN_SAMPLE_S = 5.0
MAX_SAMPLE_S = 180.0
RECOMMENDED_SAMPLES = 10  # S1: "10+ samples, 1-2 min each"
RECOMMENDED_SAMPLE_S = 60.0
_SILENT_PEAK = 100  # of 32767 (-50 dBFS): a sample that never gets louder holds no voice
_GAP_S = 0.5  # of silence between samples joined into one file
MAX_JOINED_S = 300.0  # of samples joined into one file (PlayHT asks for a minute or so)
_MB = 1024 * 1024
_MAX_SAMPLES = 25  # ElevenLabs' instant cloning takes up to 25 files
_MAX_SAMPLE_BYTES = 10 * _MB
_MAX_TOTAL_BYTES = 24 * _MB  # under GATEWAY_MAX_BODY_BYTES with the form around them


@dataclass(frozen=True, slots=True)
class CloneLimits:
    """How many samples, and how large, one clone request may hold."""

    max_samples: int = _MAX_SAMPLES
    max_sample_bytes: int = _MAX_SAMPLE_BYTES
    max_total_bytes: int = _MAX_TOTAL_BYTES

    @classmethod
    def from_env(cls) -> CloneLimits:
        """``CLONE_MAX_SAMPLES``, ``CLONE_MAX_SAMPLE_BYTES``, ``CLONE_MAX_TOTAL_BYTES``."""
        return cls(
            max_samples=positive_int_env("CLONE_MAX_SAMPLES", _MAX_SAMPLES),
            max_sample_bytes=positive_int_env("CLONE_MAX_SAMPLE_BYTES", _MAX_SAMPLE_BYTES),
            max_total_bytes=positive_int_env("CLONE_MAX_TOTAL_BYTES", _MAX_TOTAL_BYTES),
        )


@dataclass(frozen=True, slots=True)
class Upload:
    """One uploaded sample file as the client sent it."""

    filename: str | None
    content_type: str | None
    data: bytes

    @property
    def label(self) -> str:
        """How warnings name it."""
        return self.filename or "unnamed file"


@dataclass(frozen=True, slots=True)
class PreparedSamples:
    """Converted samples ready for the clone job: their list and their bytes, in order."""

    samples: list[CloneSample]
    data: bytes
    uploaded: int
    total_duration_s: float
    warnings: list[str]


def check_uploads(sizes: Sequence[int], limits: CloneLimits) -> None:
    """Refuse a request whose file count or sizes are over the limits (before any is read)."""
    if not sizes:
        raise BadInputError(
            "Send at least one audio sample (form field 'samples').", code="no_samples"
        )
    if len(sizes) > limits.max_samples:
        raise BadInputError(
            f"{len(sizes)} samples were sent; at most {limits.max_samples} are accepted.",
            code="too_many_samples",
        )
    largest = max(sizes)
    if largest > limits.max_sample_bytes:
        raise BadInputError(
            f"A sample is {largest / _MB:.1f} MB; each may be at most "
            f"{limits.max_sample_bytes / _MB:.1f} MB.",
            code=AUDIO_TOO_LARGE,
        )
    if sum(sizes) > limits.max_total_bytes:
        raise BadInputError(
            f"The samples hold {sum(sizes) / _MB:.1f} MB; at most "
            f"{limits.max_total_bytes / _MB:.1f} MB in all are accepted.",
            code=AUDIO_TOO_LARGE,
        )


async def prepare_samples(
    uploads: Sequence[Upload], fmt: SampleFormat, limits: CloneLimits
) -> PreparedSamples:
    """Check every sample and convert the usable ones to ``fmt`` (see the module docstring);
    BadInputError when none is usable."""
    check_uploads([len(u.data) for u in uploads], limits)
    decode_limits = DecodeLimits(max_bytes=limits.max_sample_bytes, max_duration_s=MAX_SAMPLE_S)
    converter = _Converter(fmt)
    refusals: list[tuple[int, BadInputError]] = []
    durations: list[float] = []
    for index, upload in enumerate(uploads):
        try:
            pcm, duration = await _checked(upload, fmt, decode_limits)
        except BadInputError as exc:
            refusals.append((index, exc))
            continue
        durations.append(duration)
        await converter.add(pcm, duration)  # converted at once: one decoded sample at a time
    if not durations:
        raise _none_usable(uploads, refusals)
    warnings = [
        f"{uploads[i].label} was skipped: {exc.message.rstrip('.')}." for i, exc in refusals
    ]
    warnings += _advice(durations)
    samples, data = await converter.finish()
    warnings += converter.warnings
    return PreparedSamples(
        samples=samples,
        data=data,
        uploaded=len(uploads),
        total_duration_s=round(sum(s.duration_s for s in samples), 3),
        warnings=warnings,
    )


async def _checked(upload: Upload, fmt: SampleFormat, limits: DecodeLimits) -> tuple[bytes, float]:
    """The sample's PCM at ``fmt``'s rate and its duration; BadInputError saying why it is
    not usable."""
    decoded = await decode_upload_async(
        upload.data,
        limits,
        filename=upload.filename,
        content_type=upload.content_type,
        sample_rate=fmt.sample_rate,
    )
    duration = decoded.duration_s
    if duration < MIN_SAMPLE_S:
        raise BadInputError(
            f"It is {duration:.1f} s long; a sample must last at least {MIN_SAMPLE_S:g} s.",
            code="sample_too_short",
        )
    if await asyncio.to_thread(_peak, decoded.pcm) < _SILENT_PEAK:
        raise BadInputError("It is silent.", code="sample_silent")
    return decoded.pcm, duration


def _peak(pcm: bytes) -> int:
    samples = array("h", pcm[: len(pcm) - len(pcm) % 2])
    if sys.byteorder == "big":
        samples.byteswap()
    return max(max(samples, default=0), -min(samples, default=0))


def _none_usable(uploads: Sequence[Upload], refusals: list[tuple[int, BadInputError]]) -> Exception:
    """One error for a request without a usable sample: the files' own code when they all
    share it (so a file that is not audio is a 415), else ``no_usable_samples``."""
    details = [
        {"loc": ["samples", i], "msg": f"{uploads[i].label}: {exc.message}", "type": exc.code}
        for i, exc in refusals
    ]
    codes = {exc.code for _, exc in refusals}
    if len(refusals) == 1:
        exc = refusals[0][1]
        return BadInputError(
            f"The sample is not usable: {exc.message}", code=exc.code, details=details
        )
    code = codes.pop() if len(codes) == 1 else "no_usable_samples"
    return BadInputError(
        f"None of the {len(refusals)} samples is usable: see details.", code=code, details=details
    )


def _advice(durations: list[float]) -> list[str]:
    advice = []
    if len(durations) < RECOMMENDED_SAMPLES:
        advice.append(
            f"{len(durations)} usable sample{'s' if len(durations) != 1 else ''}: "
            f"{RECOMMENDED_SAMPLES} or more samples of 1-2 minutes each clone a closer voice."
        )
    short = sum(1 for d in durations if d < RECOMMENDED_SAMPLE_S)
    if short:
        advice.append(
            f"{short} of the samples {'is' if short == 1 else 'are'} shorter than a minute:"
            " 1-2 minutes each is recommended."
        )
    return advice


class _Converter:
    """Encodes usable samples to ``fmt`` as they come: each at once into its own file, or
    (``one_file``) kept as PCM, up to ``MAX_JOINED_S``, and joined by short gaps at the end."""

    def __init__(self, fmt: SampleFormat) -> None:
        self.fmt = fmt
        self.warnings: list[str] = []
        self._samples: list[CloneSample] = []
        self._files: list[bytes] = []
        self._joined: list[bytes] = []
        self._joined_s = 0.0

    async def add(self, pcm: bytes, duration_s: float) -> None:
        """One more usable sample."""
        if not self.fmt.one_file:
            await self._encode(pcm, duration_s)
            return
        room_s = MAX_JOINED_S - self._joined_s
        kept_s = min(duration_s, room_s) if room_s >= MIN_SAMPLE_S else 0.0
        if kept_s < duration_s and not self.warnings:
            self.warnings.append(
                f"Only the first {MAX_JOINED_S / 60:g} minutes of samples are used: this"
                " provider clones from one file."
            )
        if kept_s:
            self._joined.append(pcm[: int(kept_s * self.fmt.sample_rate) * 2])
            self._joined_s += kept_s + _GAP_S

    async def finish(self) -> tuple[list[CloneSample], bytes]:
        """The samples' list and their files joined, in order."""
        if self._joined:
            gap = bytes(int(_GAP_S * self.fmt.sample_rate) * 2)
            await self._encode(gap.join(self._joined), self._joined_s - _GAP_S)
            self._joined.clear()
        return self._samples, b"".join(self._files)

    async def _encode(self, pcm: bytes, duration_s: float) -> None:
        rate = self.fmt.sample_rate
        encoded = await encode_pcm_async(pcm, rate, self.fmt.encoding, rate)
        name = f"sample-{len(self._samples) + 1:02d}.{self.fmt.encoding}"
        self._samples.append(
            CloneSample(filename=name, size=len(encoded.data), duration_s=round(duration_s, 3))
        )
        self._files.append(encoded.data)
