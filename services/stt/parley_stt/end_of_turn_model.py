"""The Smart Turn v3.2 model file (BSD-2-Clause, by Daily), taken from PyPI at install time.

The ~8 MB int8 ONNX file ships inside the ``pipecat-ai`` wheel. Installing Pipecat would drag
its whole dependency tree into the STT service, so ``python -m parley_stt.end_of_turn_model``
(run by ``scripts/bootstrap.sh``) asks pip for the pinned wheel alone (``pip download
--no-deps``), checks the wheel's sha256, takes the one ONNX file out of it into the model
cache (``PARLEY_MODEL_CACHE``), checks that file's sha256 and deletes the wheel. At run time
:func:`model_path` only looks: a missing or damaged file raises ``ModelNotInstalledError``
naming the command above. Nothing is ever downloaded while Parley runs.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from parley_common.errors import ModelNotInstalledError
from parley_common.model_cache import cache_root, exclusive_lock

__all__ = ["MODEL_SHA256", "PIPECAT_VERSION", "install", "main", "model_path"]

log = logging.getLogger(__name__)

PIPECAT_VERSION = "1.14.0"
WHEEL = f"pipecat_ai-{PIPECAT_VERSION}-py3-none-any.whl"
WHEEL_SHA256 = "0352f504b44e78bdf524e45af4bc759601c835b9b7dc195efe5e03384b974a44"
MEMBER = "pipecat/audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx"
MODEL_SHA256 = "2bb026316b14a660486a75b1733cd3fbab8c2fd0314dc9af7be49f8cca967e4f"
MODEL_SIZE = 8_679_182
FOLDER = "smart-turn-v3.2"
FILE = "smart-turn-v3.2-cpu.onnx"
INSTALL_COMMAND = "python -m parley_stt.end_of_turn_model"
_PIP_TIMEOUT_S = 600


def _cached() -> Path:
    return cache_root() / FOLDER / FILE


def _sha256(path: Path) -> str:
    with path.open("rb") as src:
        return hashlib.file_digest(src, "sha256").hexdigest()


def _problem(path: Path) -> str | None:
    """Why ``path`` is not the model file, or None when it is."""
    if not path.is_file():
        return f"{path} is missing"
    if path.stat().st_size != MODEL_SIZE or _sha256(path) != MODEL_SHA256:
        return f"{path} is damaged (its sha256 is not Smart Turn v3.2's)"
    return None


def model_path() -> Path:
    """The verified model file in the cache (8 MB hashed, a few ms: call it off the loop).

    Raises ``ModelNotInstalledError`` saying how to install it when it is missing or damaged.
    """
    path = _cached()
    problem = _problem(path)
    if problem is not None:
        raise ModelNotInstalledError(
            f"the end-of-turn model (Smart Turn v3.2) is not installed: {problem}; "
            f"install it with: {INSTALL_COMMAND}"
        )
    return path


def install(wheel: Path | None = None) -> Path:
    """Put the model file in the cache unless it is already there; return its path.

    ``wheel`` is an already downloaded ``pipecat-ai`` wheel; without it pip downloads the
    pinned one (network needed, to PyPI only). Both the wheel and the extracted file are
    checked against their pinned sha256; a mismatch raises ``ModelNotInstalledError`` and
    leaves no file behind. Concurrent installs take turns on a lock.
    """
    dest = _cached()
    dest.parent.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(dest.parent / ".install.lock"):
        if _problem(dest) is None:
            return dest
        with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".download-") as tmp:
            source = wheel if wheel is not None else _download(Path(tmp))
            if _sha256(source) != WHEEL_SHA256:
                raise ModelNotInstalledError(
                    f"{source.name} is not the pinned pipecat-ai {PIPECAT_VERSION} wheel "
                    "(sha256 mismatch)"
                )
            extracted = Path(tmp) / FILE
            with zipfile.ZipFile(source) as archive, extracted.open("wb") as out:
                try:
                    out.write(archive.read(MEMBER))
                except KeyError as exc:
                    raise ModelNotInstalledError(f"{source.name} has no {MEMBER}") from exc
            if _problem(extracted) is not None:
                raise ModelNotInstalledError(f"{MEMBER} in {source.name} is not the pinned file")
            extracted.chmod(0o644)
            os.replace(extracted, dest)
    log.info("installed the end-of-turn model", extra={"path": str(dest)})
    return dest


def _download(folder: Path) -> Path:
    """The pinned wheel, fetched by pip into ``folder`` without any of its dependencies."""
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        f"pipecat-ai=={PIPECAT_VERSION}",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--quiet",
        "--dest",
        str(folder),
    ]
    try:
        subprocess.run(command, check=True, timeout=_PIP_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ModelNotInstalledError(
            f"pip could not download pipecat-ai {PIPECAT_VERSION} for its end-of-turn model"
        ) from exc
    wheel = folder / WHEEL
    if not wheel.is_file():
        raise ModelNotInstalledError(f"pip did not download {WHEEL}")
    return wheel


def main() -> None:
    """``python -m parley_stt.end_of_turn_model [WHEEL]``: install the model file."""
    try:
        path = install(Path(sys.argv[1]) if len(sys.argv) > 1 else None)
    except ModelNotInstalledError as exc:
        print(f"end-of-turn model: {exc}", file=sys.stderr)
        raise SystemExit(1) from exc
    print(f"end-of-turn model: {path}")


if __name__ == "__main__":
    main()
