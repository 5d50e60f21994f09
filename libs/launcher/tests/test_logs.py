"""`parley logs`: the files `parley up` writes, merged, rendered, followed across rotation."""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from parley_launcher.logs import Follower, logs, tail


def _entry(service: str, second: int, msg: str, **extra: object) -> str:
    ts = f"2026-12-01T09:00:{second:02d}.000Z"
    return json.dumps({"ts": ts, "level": "info", "service": service, "msg": msg, **extra})


def _args(data_dir: Path, service: str | None = None, **options: object) -> argparse.Namespace:
    defaults = {"follow": False, "lines": 50, "json": False}
    return argparse.Namespace(data_dir=str(data_dir), service=service, **{**defaults, **options})


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    logs_dir = tmp_path / "logs"
    logs_dir.mkdir()
    (logs_dir / "stt.log").write_text(
        "\n".join([_entry("stt", 1, "stt one"), _entry("stt", 4, "stt two", port=9101)]) + "\n"
    )
    (logs_dir / "gateway.log").write_text(
        "\n".join(
            [
                _entry("gateway", 2, "gw one"),
                "Traceback line, not JSON",
                _entry("gateway", 3, "gw two"),
            ]
        )
        + "\n"
    )
    return tmp_path


def test_all_logs_merge_in_time_order_rendered(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert logs(_args(data_dir)) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = ["stt one", "gw one", "Traceback", "gw two", "stt two"]
    assert [next(w for w in expected if w in line) for line in lines] == expected
    assert "gateway   Traceback line, not JSON" in lines  # a plain line names its source
    assert not any(line.startswith("{") for line in lines)
    assert "port=9101" in lines[-1]


def test_one_service_raw_json_and_a_line_count(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert logs(_args(data_dir, "stt", json=True, lines=1)) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [_entry("stt", 4, "stt two", port=9101)]


def test_an_unknown_service_names_the_logs_there_are(data_dir: Path) -> None:
    with pytest.raises(SystemExit, match="known: gateway, nats, postgres, stt"):
        logs(_args(data_dir, "nope"))


def test_tail_reads_from_the_end_and_leaves_a_partial_line(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    body = "".join(f"line {i}\n" for i in range(20000))
    path.write_text(body + "partial")
    lines, offset = tail(path, 3)
    assert lines == ["line 19997", "line 19998", "line 19999"]
    assert offset == len(body)
    everything, _ = tail(path, 0)
    assert len(everything) == 20000


def test_a_follower_sees_new_lines_and_survives_rotation(tmp_path: Path) -> None:
    path = tmp_path / "tts.log"
    path.write_text("old\n")
    follower = Follower("tts", path, offset=path.stat().st_size)
    assert follower.poll() == []
    with path.open("a") as file:
        file.write("new 1\nhalf")
    assert follower.poll() == ["new 1"]
    with path.open("a") as file:
        file.write(" done\n")
    assert follower.poll() == ["half done"]
    path.rename(tmp_path / "tts.log.1")
    path.write_text("after rotation\n")
    assert follower.poll() == ["after rotation"]


def _read_until(proc: subprocess.Popen[bytes], text: str, timeout_s: float = 10.0) -> str:
    """What ``proc`` printed until ``text`` appeared (fails after ``timeout_s``)."""
    assert proc.stdout is not None
    seen = b""
    deadline = time.monotonic() + timeout_s
    while text.encode() not in seen:
        left = deadline - time.monotonic()
        assert left > 0, f"{text!r} not printed; got {seen!r}"
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            seen += os.read(proc.stdout.fileno(), 65536)
    return seen.decode()


def test_follow_prints_lines_as_they_are_written(data_dir: Path) -> None:
    parley = str(Path(sys.executable).parent / "parley")
    with subprocess.Popen(
        [parley, "logs", "-f", "--data-dir", str(data_dir)], stdout=subprocess.PIPE
    ) as proc:
        try:
            assert "stt two" in _read_until(proc, "stt two")
            # A new line in an existing file, then the file of a service that starts later.
            with (data_dir / "logs" / "stt.log").open("a") as file:
                file.write(_entry("stt", 5, "stt three") + "\n")
            _read_until(proc, "stt three")
            (data_dir / "logs" / "llm.log").write_text(_entry("llm", 6, "llm first") + "\n")
            assert "{" not in _read_until(proc, "llm first")
        finally:
            proc.terminate()
