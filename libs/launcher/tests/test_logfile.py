"""Log files: one per service, size-bounded by rotation, written off the event loop."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

from parley_launcher.logfile import LogWriter, WriterHandler


def test_lines_go_to_the_file_of_their_service(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path / "logs")
    writer.write("stt", b'{"msg": "a"}\n')
    writer.write("llm", b"plain, without a newline")
    writer.write("stt", b'{"msg": "b"}\n')
    writer.close()
    assert (tmp_path / "logs" / "stt.log").read_text() == '{"msg": "a"}\n{"msg": "b"}\n'
    assert (tmp_path / "logs" / "llm.log").read_text() == "plain, without a newline\n"


def test_a_full_file_is_rotated_and_the_total_stays_bounded(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path, max_bytes=100, backups=2)
    lines = [f"line {i:03d} ".encode() + b"x" * 10 + b"\n" for i in range(40)]  # 20 bytes each
    for line in lines:
        writer.write("tts", line)
    writer.close()
    current = (tmp_path / "tts.log").read_bytes()
    one = (tmp_path / "tts.log.1").read_bytes()
    two = (tmp_path / "tts.log.2").read_bytes()
    assert not (tmp_path / "tts.log.3").exists()
    assert all(len(data) <= 100 for data in (current, one, two))
    # The newest lines, in order, across the files; the oldest were dropped.
    assert two + one + current == b"".join(lines[-15:])


def test_appending_continues_an_existing_file_and_counts_its_size(tmp_path: Path) -> None:
    (tmp_path / "gateway.log").write_bytes(b"x" * 95 + b"\n")
    writer = LogWriter(tmp_path, max_bytes=100, backups=1)
    writer.write("gateway", b"next run\n")
    writer.close()
    assert (tmp_path / "gateway.log.1").read_bytes() == b"x" * 95 + b"\n"
    assert (tmp_path / "gateway.log").read_bytes() == b"next run\n"


def test_echo_receives_every_line_too(tmp_path: Path) -> None:
    echo = io.BytesIO()
    writer = LogWriter(tmp_path, echo=echo)
    writer.write("stt", b"one\n")
    writer.write("llm", b"two\n")
    writer.close()
    assert echo.getvalue() == b"one\ntwo\n"


def test_the_launcher_logs_json_lines_into_its_file(tmp_path: Path) -> None:
    writer = LogWriter(tmp_path)
    logger = logging.getLogger("test-launcher-file")
    handler = WriterHandler(writer)
    logger.addHandler(handler)
    try:
        logger.warning("service ignored SIGTERM", extra={"child_service": "stt"})
    finally:
        logger.removeHandler(handler)
    writer.close()
    entry = json.loads((tmp_path / "launcher.log").read_text())
    assert entry["service"] == "launcher"
    assert entry["level"] == "warning"
    assert entry["child_service"] == "stt"
