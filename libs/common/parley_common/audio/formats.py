"""Which audio container an upload really is, read from its first bytes.

The file name and the declared content type of an upload never choose how it is read: a
client can set both to anything. The container found here selects the one FFmpeg demuxer
that may read the bytes, so FFmpeg never probes its whole demuxer list (some of which, like
playlists, would open further URLs or files). The label is only compared with what the
bytes are (``declared``): a WAV named ``.mp3`` is a client's mistake worth telling it about.
"""

from __future__ import annotations

from enum import Enum

__all__ = ["InputFormat", "declared", "sniff"]


class InputFormat(Enum):
    """An accepted upload container; the value is the FFmpeg demuxer that reads it."""

    WAV = "wav"
    WEBM = "matroska"  # WebM is a Matroska subset; MediaRecorder's audio/webm;codecs=opus
    OGG = "ogg"
    MP3 = "mp3"
    FLAC = "flac"
    M4A = "mov"  # ISO BMFF (.m4a/.mp4), usually AAC
    AAC = "aac"  # raw AAC in ADTS frames


# MPEG-1/2/2.5 layer III bitrates (kbit/s) by header index; 0 and 15 are invalid.
_MP3_BITRATES = {
    3: (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),  # MPEG-1
    2: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2
    0: (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),  # MPEG-2.5
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mp3_frame_length(header: bytes) -> int | None:
    """Bytes in the MPEG layer III frame that starts with ``header`` (4 bytes), or ``None``
    when it is not a valid layer III frame header."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version = (header[1] >> 3) & 0x3
    layer = (header[1] >> 1) & 0x3
    bitrate_index = header[2] >> 4
    rate_index = (header[2] >> 2) & 0x3
    if version == 1 or layer != 1 or bitrate_index in (0, 15) or rate_index == 3:
        return None
    bitrate = _MP3_BITRATES[version][bitrate_index] * 1000
    rate = _MP3_RATES[version][rate_index]
    padding = (header[2] >> 1) & 0x1
    samples_per_frame = 1152 if version == 3 else 576
    return samples_per_frame // 8 * bitrate // rate + padding


def _id3_length(data: bytes) -> int:
    """Bytes taken by the ID3v2 tag at the start of ``data`` (header, body and footer)."""
    size = 0
    for byte in data[6:10]:  # "syncsafe": 7 bits per byte
        size = (size << 7) | (byte & 0x7F)
    footer = 10 if len(data) > 5 and data[5] & 0x10 else 0
    return 10 + size + footer


def _is_bare_mp3(data: bytes) -> bool:
    # Without an ID3 tag an MP3 starts straight with a frame sync, which one random byte pair
    # in 2000 also matches: two consecutive valid frame headers are required instead.
    length = _mp3_frame_length(data[:4])
    return length is not None and _mp3_frame_length(data[length : length + 4]) is not None


def _is_adts(data: bytes) -> bool:
    # ADTS: 12-bit sync, layer always 00, and a frame length covering at least its header.
    if len(data) < 7 or data[0] != 0xFF or data[1] & 0xF6 != 0xF0:
        return False
    frame_length = ((data[3] & 0x3) << 11) | (data[4] << 3) | (data[5] >> 5)
    return frame_length >= 7


def sniff(data: bytes) -> InputFormat | None:
    """The container of ``data`` judged from its magic bytes, or ``None`` when it is none of
    the accepted ones (text, random bytes, an image, a video-only format...)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return InputFormat.WAV
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return InputFormat.WEBM
    if data[:4] == b"OggS":
        return InputFormat.OGG
    if data[:4] == b"fLaC":
        return InputFormat.FLAC
    if data[4:8] == b"ftyp":
        return InputFormat.M4A
    if data[:3] == b"ID3":
        # An ID3v2 tag also prefixes raw AAC; FFmpeg's AAC demuxer skips it like MP3's does.
        return InputFormat.AAC if _is_adts(data[_id3_length(data) :]) else InputFormat.MP3
    if _is_bare_mp3(data):
        return InputFormat.MP3
    if _is_adts(data):
        return InputFormat.AAC
    return None


_W, _WEBM, _OGG, _MP3, _FLAC, _M4A, _AAC = (
    InputFormat.WAV,
    InputFormat.WEBM,
    InputFormat.OGG,
    InputFormat.MP3,
    InputFormat.FLAC,
    InputFormat.M4A,
    InputFormat.AAC,
)
# What a file name's extension or a content type claims; absent: it claims nothing.
_BY_EXTENSION: dict[str, frozenset[InputFormat]] = {
    "wav": frozenset({_W}),
    "wave": frozenset({_W}),
    "webm": frozenset({_WEBM}),
    "weba": frozenset({_WEBM}),
    "mka": frozenset({_WEBM}),
    "ogg": frozenset({_OGG}),
    "oga": frozenset({_OGG}),
    "opus": frozenset({_OGG}),
    "mp3": frozenset({_MP3}),
    "flac": frozenset({_FLAC}),
    "m4a": frozenset({_M4A}),
    "mp4": frozenset({_M4A}),
    "aac": frozenset({_AAC, _M4A}),
}
_BY_TYPE: dict[str, frozenset[InputFormat]] = {
    "audio/wav": frozenset({_W}),
    "audio/x-wav": frozenset({_W}),
    "audio/wave": frozenset({_W}),
    "audio/vnd.wave": frozenset({_W}),
    "audio/webm": frozenset({_WEBM}),
    "video/webm": frozenset({_WEBM}),
    "audio/ogg": frozenset({_OGG}),
    "audio/opus": frozenset({_OGG}),
    "application/ogg": frozenset({_OGG}),
    "audio/mpeg": frozenset({_MP3}),
    "audio/mp3": frozenset({_MP3}),
    "audio/flac": frozenset({_FLAC}),
    "audio/x-flac": frozenset({_FLAC}),
    "audio/mp4": frozenset({_M4A}),
    "audio/x-m4a": frozenset({_M4A}),
    "audio/m4a": frozenset({_M4A}),
    "video/mp4": frozenset({_M4A}),
    "audio/aac": frozenset({_AAC, _M4A}),
}


def declared(filename: str | None, content_type: str | None) -> tuple[str, frozenset[InputFormat]]:
    """What an upload's label says it is: the label as the client wrote it and the formats
    it allows; an empty set when it names no known audio format (``upload.bin``,
    ``application/octet-stream``), which then claims nothing."""
    media = (content_type or "").split(";")[0].strip().lower()
    if media in _BY_TYPE:
        return media, _BY_TYPE[media]
    extension = (filename or "").rsplit(".", 1)[-1].lower() if "." in (filename or "") else ""
    if extension in _BY_EXTENSION:
        return f".{extension}", _BY_EXTENSION[extension]
    return "", frozenset()
