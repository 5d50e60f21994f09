"""What the voice-cloning emulators share: the voices cloned on them, each of which then
speaks at the pitch of the samples it was cloned from (so a test can tell from the audio alone
that a session spoke with the clone), and reading those samples as a provider would: files
that are not audio, or too short to clone from, are refused."""

from __future__ import annotations

import asyncio
import itertools
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field

from starlette.datastructures import UploadFile

from parley_common.audio import decode_upload
from parley_common.errors import BadInputError

__all__ = ["MIN_SAMPLE_S", "Clones", "UploadedFile", "pcm_pitch", "pitch_of", "read_files"]

MIN_SAMPLE_S = 1.0  # shorter samples are refused, as the providers refuse a silent blip
DEFAULT_PITCH_HZ = 440.0  # the voices that were not cloned (``speech.tone``'s default)
_RATE = 16_000  # of the PCM the samples are decoded to
_LOUD = 300  # peak amplitude of a frame that has sound in it (of 32767)


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """One file of a multipart upload, as the client sent it."""

    filename: str | None
    content_type: str | None
    data: bytes

    def summary(self) -> dict[str, object]:
        """What a test asserts on (the bytes are kept on the ``Clones``)."""
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "size": len(self.data),
        }


@dataclass
class Clones:
    """The voices cloned on one emulator: their samples' pitch and the files they came from.

    ``limit`` is the account's number of voice slots: adding one more is refused as the
    provider refuses it (ElevenLabs: ``voice_limit_reached``)."""

    limit: int = 30
    pitches: dict[str, float] = field(default_factory=dict)
    files: dict[str, list[UploadedFile]] = field(default_factory=dict)

    @property
    def full(self) -> bool:
        """Whether every voice slot is taken."""
        return len(self.pitches) >= self.limit

    def add(self, voice_id: str, files: list[UploadedFile], pitch_hz: float) -> None:
        """Keep a cloned voice."""
        self.pitches[voice_id] = pitch_hz
        self.files[voice_id] = files

    def remove(self, voice_id: str) -> bool:
        """Forget a cloned voice; False when there was none."""
        self.files.pop(voice_id, None)
        return self.pitches.pop(voice_id, None) is not None

    def pitch(self, voice_id: str) -> float:
        """The frequency ``voice_id`` speaks at."""
        return self.pitches.get(voice_id, DEFAULT_PITCH_HZ)


async def read_files(values: Sequence[object]) -> list[UploadedFile]:
    """The uploaded files among multipart ``values`` (other values are ignored)."""
    files = []
    for value in values:
        if isinstance(value, UploadFile):
            files.append(UploadedFile(value.filename, value.content_type, await value.read()))
    return files


async def pitch_of(files: list[UploadedFile]) -> float | None:
    """The dominant frequency of the samples' sound, rounded to 1 Hz; None when a file is not
    audio or holds less than ``MIN_SAMPLE_S`` of it."""
    return await asyncio.to_thread(_pitch, files)


def _pitch(files: list[UploadedFile]) -> float | None:
    crossings = loud_s = 0.0
    for file in files:
        try:
            pcm = decode_upload(file.data, sample_rate=_RATE).pcm
        except BadInputError:
            return None
        if len(pcm) < MIN_SAMPLE_S * _RATE * 2:
            return None
        counted = _crossings(pcm, _RATE)
        crossings += counted[0]
        loud_s += counted[1]
    return float(round(crossings / 2 / loud_s)) if loud_s else None


def pcm_pitch(pcm: bytes, rate: int) -> float | None:
    """The dominant frequency of PCM16 LE mono audio where it has sound (None: silent), from
    its zero crossings: what a test asserts a clone spoke at."""
    crossings, loud_s = _crossings(pcm, rate)
    return crossings / 2 / loud_s if loud_s else None


def _crossings(pcm: bytes, rate: int) -> tuple[int, float]:
    """Zero crossings in the 20 ms frames that have sound, and how long those last."""
    samples = array("h", pcm[: len(pcm) - len(pcm) % 2])
    if sys.byteorder == "big":
        samples.byteswap()
    frame = max(1, rate // 50)
    crossings = loud = 0
    for start in range(0, len(samples) - frame + 1, frame):
        if max(samples[start : start + frame]) < _LOUD:
            continue
        loud += 1
        # From the sample before the frame: the crossing at its edge counts too.
        edge = samples[max(0, start - 1) : start + frame]
        crossings += sum(1 for a, b in itertools.pairwise(edge) if (a < 0) != (b < 0))
    return crossings, loud * frame / rate
