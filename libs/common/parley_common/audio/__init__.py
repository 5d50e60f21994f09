"""Audio files in and out of Parley's REST API, all in memory through PyAV (FFmpeg).

``decode`` turns an uploaded recording into the PCM16 LE mono 16 kHz that STT takes,
``encode`` turns PCM into a complete mp3/wav/opus/flac/pcm/webm file, and ``effects`` applies
``speed`` and ``pitch`` when a TTS provider cannot. Every refusal is a ``BadInputError`` with
a stable ``code``. (``parley_common.bus.audio`` is unrelated: metadata of the bus's audio
frames.)
"""

from parley_common.audio.decode import (
    DecodedAudio,
    DecodeLimits,
    decode_upload,
    decode_upload_async,
)
from parley_common.audio.effects import apply_effects, apply_effects_async
from parley_common.audio.encode import (
    AudioFormat,
    EncodedAudio,
    Encoding,
    encodable_rate,
    encode_pcm,
    encode_pcm_async,
    mime_type,
)
from parley_common.audio.formats import InputFormat, sniff

__all__ = [
    "AudioFormat",
    "DecodeLimits",
    "DecodedAudio",
    "EncodedAudio",
    "Encoding",
    "InputFormat",
    "apply_effects",
    "apply_effects_async",
    "decode_upload",
    "decode_upload_async",
    "encodable_rate",
    "encode_pcm",
    "encode_pcm_async",
    "mime_type",
    "sniff",
]
