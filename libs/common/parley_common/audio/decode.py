"""Uploaded audio (bytes of any accepted container) -> PCM16 LE mono 16 kHz, what STT takes.

Policy, for the REST routes that accept recorded audio:

* The container is sniffed from the bytes (``formats.sniff``); a file name or content type
  is never asked for, so a WAV named ``.mp3`` is simply decoded as the WAV it is.
* Everything happens in memory with PyAV (its wheels bundle FFmpeg): no file path, no
  subprocess. Decoding blocks; on an event loop use ``decode_upload_async``.
* A file cut short is refused where its header tells (WebM with a duration, FLAC, M4A);
  WAV, Ogg, MP3 and AAC are streams and decode up to the cut, like a shorter recording.
* Limits (``DecodeLimits``): 25 MB checked first, then 10 minutes, from the header when it
  states a duration and while decoding always (MediaRecorder's WebM states none).
* Every refusal is a ``BadInputError`` whose ``code`` says why (the ``AUDIO_*`` constants).
"""

from __future__ import annotations

import asyncio
import functools
import io
from dataclasses import dataclass

import av
from av.audio.resampler import AudioResampler
from av.container import InputContainer

from parley_common.audio._pcm import BYTES_PER_SAMPLE, resampled_pcm
from parley_common.audio.formats import InputFormat, declared, sniff
from parley_common.bus.audio import INPUT_SAMPLE_RATE
from parley_common.errors import BadInputError
from parley_common.settings import positive_int_env

__all__ = [
    "AUDIO_EMPTY",
    "AUDIO_MISLABELLED",
    "AUDIO_TOO_LARGE",
    "AUDIO_TOO_LONG",
    "AUDIO_UNREADABLE",
    "AUDIO_UNSUPPORTED",
    "DecodeLimits",
    "DecodedAudio",
    "decode_upload",
    "decode_upload_async",
]

AUDIO_EMPTY = "audio_empty"  # no bytes, or a valid file without a single sample
AUDIO_TOO_LARGE = "audio_too_large"  # more bytes than DecodeLimits.max_bytes
AUDIO_TOO_LONG = "audio_too_long"  # longer than DecodeLimits.max_duration_s
AUDIO_UNSUPPORTED = "audio_unsupported"  # not an accepted container, or no audio track
AUDIO_UNREADABLE = "audio_unreadable"  # an accepted container, but corrupt or truncated
AUDIO_MISLABELLED = "audio_mislabelled"  # named or typed as one format, holding another

_ACCEPTED = "WAV, WebM/Opus, Ogg/Opus, MP3, FLAC or M4A/AAC"
# A declared duration is trusted to this much; past it the header itself is the proof.
_DURATION_SLACK_S = 1.0
# Decoding less than this share of a declared duration means the file was cut short.
_TRUNCATED_SHARE = 0.9
# Containers whose header states the exact duration. Elsewhere FFmpeg may only estimate it
# from the bitrate (MP3 without a Xing tag, ADTS), and streaming formats cut short (WAV, Ogg,
# MP3) are decoded up to the cut like any shorter recording; M4A and FLAC cut short fail.
_EXACT_DURATION = frozenset({InputFormat.WEBM, InputFormat.FLAC})
_MICROSECONDS = 1_000_000
_MAX_BYTES = 25 * 1024 * 1024  # the upload limit of the cloud STT APIs Parley fronts
_MAX_DURATION_S = 600


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """How much an upload may hold; ``from_env`` reads ``AUDIO_MAX_UPLOAD_BYTES`` and
    ``AUDIO_MAX_DURATION_S``."""

    max_bytes: int = _MAX_BYTES
    max_duration_s: float = _MAX_DURATION_S

    @classmethod
    def from_env(cls) -> DecodeLimits:
        """Limits from the environment, the defaults where a variable is unset."""
        return cls(
            max_bytes=positive_int_env("AUDIO_MAX_UPLOAD_BYTES", _MAX_BYTES),
            max_duration_s=positive_int_env("AUDIO_MAX_DURATION_S", _MAX_DURATION_S),
        )


@dataclass(frozen=True, slots=True)
class DecodedAudio:
    """An upload as PCM16 LE mono at ``sample_rate`` (16 kHz), and what it was."""

    pcm: bytes
    sample_rate: int
    source_format: InputFormat

    @property
    def duration_s(self) -> float:
        """Seconds of audio in ``pcm``."""
        return len(self.pcm) / BYTES_PER_SAMPLE / self.sample_rate


def decode_upload(
    data: bytes,
    limits: DecodeLimits | None = None,
    *,
    filename: str | None = None,
    content_type: str | None = None,
    sample_rate: int = INPUT_SAMPLE_RATE,
) -> DecodedAudio:
    """Decode an uploaded recording to PCM16 LE mono 16 kHz (or ``sample_rate``). ``filename``
    and ``content_type``, when given, must not claim another format than the bytes hold.

    Raises ``BadInputError`` with code ``audio_empty``, ``audio_too_large``,
    ``audio_unsupported``, ``audio_mislabelled``, ``audio_unreadable`` or
    ``audio_too_long``. Blocking: CPU-bound for about a hundredth of the clip's length.
    """
    limits = limits or DecodeLimits()
    if not data:
        raise BadInputError("The audio upload is empty.", code=AUDIO_EMPTY)
    if len(data) > limits.max_bytes:
        raise BadInputError(
            f"The audio upload is {len(data) / 1e6:.1f} MB; at most "
            f"{limits.max_bytes / 1e6:.1f} MB is accepted.",
            code=AUDIO_TOO_LARGE,
        )
    source = sniff(data)
    if source is None:
        raise BadInputError(
            f"The upload is not audio Parley can read: send {_ACCEPTED}.",
            code=AUDIO_UNSUPPORTED,
        )
    label, claimed = declared(filename, content_type)
    if claimed and source not in claimed:
        raise BadInputError(
            f"The upload is labelled {label} but holds {source.name} audio: label it as what"
            " it is (or as application/octet-stream).",
            code=AUDIO_MISLABELLED,
        )
    try:
        # Tags are never read, but PyAV decodes them at open: bad UTF-8 in a title must not
        # fail the upload (with the default "strict" it raises UnicodeDecodeError).
        with av.open(
            io.BytesIO(data), mode="r", format=source.value, metadata_errors="replace"
        ) as container:
            pcm = _decode(container, source, limits, sample_rate)
    except av.FFmpegError as exc:
        raise _unreadable(source) from exc
    if not pcm:
        raise BadInputError("The audio upload holds no sound.", code=AUDIO_EMPTY)
    return DecodedAudio(pcm=pcm, sample_rate=sample_rate, source_format=source)


async def decode_upload_async(
    data: bytes,
    limits: DecodeLimits | None = None,
    *,
    filename: str | None = None,
    content_type: str | None = None,
    sample_rate: int = INPUT_SAMPLE_RATE,
) -> DecodedAudio:
    """``decode_upload`` in a worker thread, so the event loop keeps serving."""
    return await asyncio.to_thread(
        functools.partial(
            decode_upload,
            data,
            limits,
            filename=filename,
            content_type=content_type,
            sample_rate=sample_rate,
        )
    )


def _unreadable(source: InputFormat) -> BadInputError:
    return BadInputError(
        f"The {source.name} upload is damaged or cut short and cannot be decoded.",
        code=AUDIO_UNREADABLE,
    )


def _too_long(limits: DecodeLimits) -> BadInputError:
    return BadInputError(
        f"The recording is longer than the {limits.max_duration_s:g} s accepted.",
        code=AUDIO_TOO_LONG,
    )


def _declared_duration_s(container: InputContainer) -> float | None:
    """What the header says (or FFmpeg estimated from the header and size), if anything."""
    stream = container.streams.audio[0]
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / _MICROSECONDS
    return None


def _decode(
    container: InputContainer, source: InputFormat, limits: DecodeLimits, rate: int
) -> bytes:
    if not container.streams.audio:
        raise BadInputError(f"The {source.name} upload has no audio track.", code=AUDIO_UNSUPPORTED)
    declared = _declared_duration_s(container)
    # Refused from the header alone when it can tell: no need to decode ten minutes first.
    if declared is not None and declared > limits.max_duration_s + _DURATION_SLACK_S:
        raise _too_long(limits)
    # Enforced while decoding too, for recordings without a duration (MediaRecorder's WebM).
    max_bytes = int(limits.max_duration_s * rate) * BYTES_PER_SAMPLE
    resampler: AudioResampler | None = None
    shape: tuple[str, str, int] | None = None
    parts: list[bytes] = []
    size = 0
    for frame in container.decode(container.streams.audio[0]):
        # A stream may change rate or channels midway (chained Ogg, concatenated MP3s), and
        # a resampler takes only the input it was set up with: flush it, start another.
        frame_shape = (frame.format.name, frame.layout.name, frame.sample_rate)
        if resampler is None or frame_shape != shape:
            if resampler is not None:
                parts.append(resampled_pcm(resampler, None))
            resampler = AudioResampler(format="s16", layout="mono", rate=rate)
            shape = frame_shape
        part = resampled_pcm(resampler, frame)
        size += len(part)
        if size > max_bytes:
            raise _too_long(limits)
        parts.append(part)
    if resampler is not None:
        parts.append(resampled_pcm(resampler, None))
    pcm = b"".join(parts)
    decoded_s = len(pcm) / BYTES_PER_SAMPLE / rate
    # FFmpeg reads a cut-off WebM without complaint up to the cut; its header still tells
    # how long it was.
    truncated = declared is not None and decoded_s < declared * _TRUNCATED_SHARE - 0.1
    if truncated and source in _EXACT_DURATION:
        raise _unreadable(source)
    return pcm
