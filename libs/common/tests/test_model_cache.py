"""The model cache on real installed distributions: small wheels-as-installed (a package folder
plus its ``.dist-info`` with a RECORD) written to a temporary site directory."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import multiprocessing
import os
import socket
import time
from multiprocessing.queues import Queue
from pathlib import Path

import pytest

from parley_common.errors import ModelNotInstalledError
from parley_common.model_cache import (
    CACHE_ENV,
    AssembledFile,
    CachedModel,
    InstallHint,
    PackagedFile,
    cache_root,
    cached_model,
    exclusive_lock,
    packaged_file,
)

PART1 = b"first half of the weights " * 1000
PART2 = b"and the second half " * 1000
CONFIG = b'{"layers": 2}'
HINT = InstallHint("the test model", "parley-test[model]")


def _part(n: int, name: str) -> PackagedFile:
    return PackagedFile(f"parley-fake-model-part{n}", f"parley_fake_model_part{n}", name, HINT)


MODEL = CachedModel(
    folder="fake-model",
    files=(
        AssembledFile(
            "model.bin",
            (_part(1, "data/model.bin.part1"), _part(2, "data/model.bin.part2")),
            sha256=hashlib.sha256(PART1 + PART2).hexdigest(),
        ),
        AssembledFile("config.json", (_part(1, "data/config.json"),)),
    ),
)


def install(
    site: Path, n: int, files: dict[str, bytes], recorded: dict[str, bytes] | None = None
) -> None:
    """Lay out distribution ``parley-fake-model-part{n}`` as pip installs it; ``recorded``
    gives the content its RECORD describes where that differs from what is on disk."""
    module = f"parley_fake_model_part{n}"
    (site / module / "data").mkdir(parents=True)
    (site / module / "__init__.py").write_bytes(b"")
    rows = [f"{module}/__init__.py,,"]
    for name, content in files.items():
        (site / module / name).write_bytes(content)
        described = (recorded or {}).get(name, content)
        digest = base64.urlsafe_b64encode(hashlib.sha256(described).digest()).rstrip(b"=")
        rows.append(f"{module}/{name},sha256={digest.decode()},{len(described)}")
    info = site / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: parley-fake-model-part{n}\nVersion: 1.0\n"
    )
    rows.append(f"{info.name}/RECORD,,")
    (info / "RECORD").write_text("\n".join(rows) + "\n")


def install_model(site: Path, part2: bytes = PART2, config: bytes = CONFIG) -> None:
    install(site, 1, {"data/model.bin.part1": PART1, "data/config.json": config})
    install(site, 2, {"data/model.bin.part2": part2})


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "cache"
    monkeypatch.setenv(CACHE_ENV, str(root))
    return root


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty site directory, first on sys.path."""
    path = tmp_path / "site"
    path.mkdir()
    monkeypatch.syspath_prepend(str(path))  # also invalidates the import caches
    return path


@pytest.fixture
def installed(site: Path) -> Path:
    install_model(site)
    return site


def test_the_cache_root_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CACHE_ENV, "~/models")
    assert cache_root() == Path.home() / "models"
    monkeypatch.delenv(CACHE_ENV)
    assert cache_root() == Path.home() / ".cache" / "parley" / "models"


def test_parts_are_joined_once_and_then_reused(installed: Path, cache: Path) -> None:
    folder = cached_model(MODEL)
    model_bin = folder / "model.bin"
    first = model_bin.stat()

    assert folder == cache / "fake-model"
    assert model_bin.read_bytes() == PART1 + PART2
    assert (folder / "config.json").read_bytes() == CONFIG
    assert cached_model(MODEL) == folder
    assert model_bin.stat().st_ino == first.st_ino  # reused, not rewritten
    assert sorted(p.name for p in folder.iterdir()) == [
        ".parley-manifest.json",
        ".parley-manifest.lock",
        "config.json",
        "model.bin",
    ]


def test_an_unchanged_cache_is_trusted_without_reading_it(installed: Path, cache: Path) -> None:
    model_bin = cached_model(MODEL) / "model.bin"
    before = model_bin.stat()
    # Same size and modification time, other bytes: only hashing could tell. It must not
    # happen on every start (the real models are hundreds of MB).
    model_bin.write_bytes(bytes(before.st_size))
    os.utime(model_bin, ns=(before.st_atime_ns, before.st_mtime_ns))

    cached_model(MODEL)

    assert model_bin.read_bytes() == bytes(before.st_size)


def test_a_corrupted_cached_file_is_detected_and_rebuilt(installed: Path, cache: Path) -> None:
    model_bin = cached_model(MODEL) / "model.bin"
    before = model_bin.stat()
    with model_bin.open("r+b") as damaged:  # same size, other bytes, a later write
        damaged.write(b"\0" * 64)
    os.utime(model_bin, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))

    cached_model(MODEL)

    assert model_bin.read_bytes() == PART1 + PART2
    assert model_bin.stat().st_ino != before.st_ino


def test_a_truncated_cached_file_is_rebuilt(installed: Path, cache: Path) -> None:
    config = cached_model(MODEL) / "config.json"
    config.write_bytes(CONFIG[:3])

    cached_model(MODEL)

    assert config.read_bytes() == CONFIG


def test_a_good_file_without_its_manifest_is_kept_after_one_hash(
    installed: Path, cache: Path
) -> None:
    folder = cached_model(MODEL)
    model_bin, config = folder / "model.bin", folder / "config.json"
    kept, copied = model_bin.stat().st_ino, config.stat().st_ino
    (folder / ".parley-manifest.json").unlink()

    cached_model(MODEL)

    # model.bin has a published sha256 to check it against; config.json has none left.
    assert model_bin.stat().st_ino == kept
    assert config.stat().st_ino != copied
    manifest = json.loads((folder / ".parley-manifest.json").read_text())
    assert manifest["files"]["model.bin"]["sha256"] == MODEL.files[0].sha256


def test_a_manifest_of_an_older_parley_is_upgraded_without_reassembly(
    installed: Path, cache: Path
) -> None:
    folder = cached_model(MODEL)
    manifest_path = folder / ".parley-manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for entry in manifest["files"].values():
        del entry["mtime_ns"]  # the format before the shared cache: sizes and hashes only
    manifest_path.write_text(json.dumps(manifest))
    inodes = {p.name: p.stat().st_ino for p in folder.iterdir() if not p.name.startswith(".")}

    cached_model(MODEL)

    assert {name: (folder / name).stat().st_ino for name in inodes} == inodes
    upgraded = json.loads(manifest_path.read_text())
    assert all("mtime_ns" in entry for entry in upgraded["files"].values())


def test_a_new_wheel_rebuilds_the_files_made_from_it(
    installed: Path, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = cached_model(MODEL) / "config.json"
    upgraded = tmp_path / "upgraded"
    upgraded.mkdir()
    install_model(upgraded, config=b'{"layers": 3}')
    monkeypatch.syspath_prepend(str(upgraded))

    cached_model(MODEL)

    assert config.read_bytes() == b'{"layers": 3}'


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every attempt to open a connection, refused and recorded."""
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise OSError("the model cache must not use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts


def test_a_missing_package_says_how_to_install_it_and_downloads_nothing(
    site: Path, cache: Path, no_network: list[object]
) -> None:
    install(site, 1, {"data/model.bin.part1": PART1, "data/config.json": CONFIG})

    with pytest.raises(ModelNotInstalledError) as raised:
        cached_model(MODEL)

    assert raised.value.code == "model_not_installed"
    assert raised.value.message == (
        "package 'parley_fake_model_part2' is not installed; "
        "install the test model with: pip install 'parley-test[model]'"
    )
    assert no_network == []
    assert not cache.exists()


def test_a_missing_file_in_an_installed_package_asks_for_a_reinstall(site: Path) -> None:
    install(site, 1, {"data/config.json": CONFIG})

    with pytest.raises(ModelNotInstalledError, match=r"model\.bin\.part1 is missing; reinstall"):
        packaged_file(_part(1, "data/model.bin.part1"))


def test_a_file_shorter_than_its_wheel_says_is_reported(site: Path) -> None:
    install(site, 2, {"data/model.bin.part2": PART2[:-1]}, recorded={"data/model.bin.part2": PART2})

    with pytest.raises(ModelNotInstalledError) as raised:
        packaged_file(_part(2, "data/model.bin.part2"))

    assert f"is {len(PART2) - 1} bytes, its wheel says {len(PART2)}" in raised.value.message
    assert "pip install --force-reinstall 'parley-test[model]'" in raised.value.message


def test_a_part_unlike_its_wheel_leaves_no_model_behind(site: Path, cache: Path) -> None:
    altered = PART2[:-1] + b"!"  # same size, so only the hash tells
    install(site, 1, {"data/model.bin.part1": PART1, "data/config.json": CONFIG})
    install(site, 2, {"data/model.bin.part2": altered}, recorded={"data/model.bin.part2": PART2})

    with pytest.raises(ModelNotInstalledError, match="does not match its published sha256"):
        cached_model(MODEL)

    assert sorted(p.name for p in (cache / "fake-model").iterdir()) == [".parley-manifest.lock"]


def test_parts_that_do_not_join_into_the_published_file_leave_no_model_behind(
    site: Path, cache: Path
) -> None:
    install_model(site, part2=b"a part its wheel vouches for, from another model")

    with pytest.raises(ModelNotInstalledError, match="do not assemble into the published file"):
        cached_model(MODEL)

    assert sorted(p.name for p in (cache / "fake-model").iterdir()) == [".parley-manifest.lock"]


# --- two processes -----------------------------------------------------------------------


class _Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.assembled = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() == "assembled model file":
            self.assembled += 1


def _prepare(results: Queue[tuple[str, int]]) -> None:
    """In a forked child: prepare the model; report its folder and how often it assembled."""
    logger = logging.getLogger("parley_common.model_cache")
    logger.setLevel(logging.INFO)
    count = _Count()
    logger.addHandler(count)
    folder = cached_model(MODEL)
    results.put((str(folder), count.assembled))


def test_two_processes_wait_for_the_lock_and_assemble_once(installed: Path, cache: Path) -> None:
    context = multiprocessing.get_context("fork")  # the children inherit the fake site
    results: Queue[tuple[str, int]] = context.Queue()
    folder = cache / "fake-model"
    folder.mkdir(parents=True)
    with exclusive_lock(folder / ".parley-manifest.lock"):
        children = [context.Process(target=_prepare, args=(results,)) for _ in range(2)]
        for child in children:
            child.start()
        time.sleep(0.5)  # unlocked, both would have finished the tiny model long before this
        assert all(child.is_alive() for child in children)
        assert not (folder / "model.bin").exists()

    reports = [results.get(timeout=30) for _ in children]
    for child in children:
        child.join(timeout=30)
        assert child.exitcode == 0

    assert [path for path, _ in reports] == [str(folder)] * 2
    assert sum(assembled for _, assembled in reports) == 2  # two files, by one of them
    assert sorted(assembled for _, assembled in reports) == [0, 2]
    assert (folder / "model.bin").read_bytes() == PART1 + PART2
