"""Reading the marker of a background llama.cpp build (written by scripts/bootstrap.sh)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from parley_launcher import pending_build
from parley_launcher.pending_build import module_args, pending


@pytest.fixture
def compiler() -> Iterator[subprocess.Popen[bytes]]:
    """A live process standing in for the build."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    yield proc
    proc.kill()
    proc.wait()


def _mark(marker: Path, pid: int, log: Path, *extra: str) -> Path:
    marker.write_text("\n".join(["module=parley_llm", f"pid={pid}", f"log={log}", *extra]))
    return marker


def test_a_live_build_is_pending_with_its_progress(
    tmp_path: Path, compiler: subprocess.Popen[bytes]
) -> None:
    log = tmp_path / "build.log"
    warnings = "quants.c:12: warning: unused variable\n" * 20_000  # ~700 KB of them
    log.write_text(f"-- Configuring done\n  [1/78] g++ a.c\n  [17/78] g++ b.c\n{warnings}")
    build = pending(_mark(tmp_path / "m", compiler.pid, log))
    assert build is not None
    assert (build.module, build.pid, build.log) == ("parley_llm", compiler.pid, log)
    assert build.step() == "17/78"
    assert build.describe() == "llama.cpp is still compiling (step 17/78); starts when it is done"


def test_no_step_before_the_compiler_starts(
    tmp_path: Path, compiler: subprocess.Popen[bytes]
) -> None:
    log = tmp_path / "build.log"
    log.write_text("Collecting scikit-build-core\n")
    build = pending(_mark(tmp_path / "m", compiler.pid, log))
    assert build is not None
    assert build.step() is None
    assert build.describe().startswith("llama.cpp is still compiling; starts when")
    missing = pending(_mark(tmp_path / "m2", compiler.pid, tmp_path / "nothing.log"))
    assert missing is not None
    assert missing.step() is None


def test_no_marker_a_failed_build_or_a_dead_one_is_not_pending(
    tmp_path: Path, compiler: subprocess.Popen[bytes]
) -> None:
    log = tmp_path / "build.log"
    assert pending(tmp_path / "absent") is None
    assert pending(_mark(tmp_path / "failed", compiler.pid, log, "failed")) is None
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert pending(_mark(tmp_path / "dead", int(dead.stdout), log)) is None
    (tmp_path / "garbled").write_text("pid=twelve\n")
    assert pending(tmp_path / "garbled") is None


def test_only_the_marked_module_goes_through_the_waiter(
    tmp_path: Path, compiler: subprocess.Popen[bytes]
) -> None:
    marker = _mark(tmp_path / "m", compiler.pid, tmp_path / "build.log")
    assert module_args("parley_llm", marker) == [
        "-m",
        "parley_launcher.pending_build",
        "parley_llm",
    ]
    assert module_args("parley_stt", marker) == ["-m", "parley_stt"]
    marker.unlink()
    assert module_args("parley_llm", marker) == ["-m", "parley_llm"]


def test_the_marker_is_the_virtualenvs_unless_the_environment_says(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(pending_build.MARKER_ENV, raising=False)
    assert pending_build.marker_path() == Path(sys.prefix) / ".parley-pending-build"
    monkeypatch.setenv(pending_build.MARKER_ENV, str(tmp_path / "m"))
    assert pending_build.marker_path() == tmp_path / "m"
