"""``<data dir>/logs/<service>.log``: every service's output, size-bounded, written off the loop.

The launcher reads each service's stdout/stderr from a pipe and hands the lines to one
``LogWriter``, whose thread appends them to the service's file (and, with ``--log-format
json``, to stderr as well): the event loop never waits on a disk or a terminal. A file that
reaches ``max_bytes`` is rotated to ``<service>.log.1`` (then ``.2``…), so logs stay bounded.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from pathlib import Path
from typing import BinaryIO

from parley_common.observability.logging import JsonFormatter

MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 2
_CLOSE = ("", b"")


def log_dir(data_dir: Path) -> Path:
    """Where ``parley up`` writes the logs of a data dir."""
    return data_dir / "logs"


class LogWriter:
    """Appends lines to ``<directory>/<name>.log`` from a background thread."""

    def __init__(
        self,
        directory: Path,
        *,
        echo: BinaryIO | None = None,
        max_bytes: int = MAX_BYTES,
        backups: int = BACKUPS,
    ) -> None:
        self.directory = directory
        self.echo = echo
        self.max_bytes = max_bytes
        self.backups = backups
        self._queue: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
        self._files: dict[str, BinaryIO] = {}
        self._sizes: dict[str, int] = {}
        directory.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._drain, name="parley-logs", daemon=True)
        self._thread.start()

    def path(self, name: str) -> Path:
        """The log file of ``name``."""
        return self.directory / f"{name}.log"

    def write(self, name: str, line: bytes) -> None:
        """Queue one line for ``name``'s file; never blocks."""
        self._queue.put((name, line if line.endswith(b"\n") else line + b"\n"))

    def close(self) -> None:
        """Write what is queued, then close every file."""
        self._queue.put(_CLOSE)
        self._thread.join()

    def _drain(self) -> None:
        while True:
            item = self._queue.get()
            # Write everything already queued before flushing once: a burst costs one flush.
            while item != _CLOSE:
                # A full or read-only disk loses log lines, never the platform.
                with contextlib.suppress(OSError):
                    self._append(*item)
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            for file in self._files.values():
                file.flush()
            if self.echo is not None:
                self.echo.flush()
            if item == _CLOSE:
                for file in self._files.values():
                    file.close()
                return

    def _append(self, name: str, line: bytes) -> None:
        file = self._files.get(name) or self._open(name)
        if self._sizes[name] and self._sizes[name] + len(line) > self.max_bytes:
            file = self._rotate(name)
        file.write(line)
        self._sizes[name] += len(line)
        if self.echo is not None:
            self.echo.write(line)

    def _open(self, name: str) -> BinaryIO:
        path = self.path(name)
        file = path.open("ab")
        self._files[name] = file
        self._sizes[name] = path.stat().st_size
        return file

    def _rotate(self, name: str) -> BinaryIO:
        self._files.pop(name).close()
        path = self.path(name)
        for index in range(self.backups - 1, 0, -1):
            older = path.with_name(f"{path.name}.{index}")
            if older.exists():
                older.replace(path.with_name(f"{path.name}.{index + 1}"))
        if self.backups > 0:
            path.replace(path.with_name(f"{path.name}.1"))
        else:
            path.unlink()
        return self._open(name)


class WriterHandler(logging.Handler):
    """Sends the launcher's own records, as JSON lines, to its file in a ``LogWriter``."""

    def __init__(self, writer: LogWriter, name: str = "launcher") -> None:
        super().__init__()
        self.writer = writer
        self.stream_name = name
        self.setFormatter(JsonFormatter(name))

    def emit(self, record: logging.LogRecord) -> None:
        """Queue the formatted record."""
        try:
            self.writer.write(self.stream_name, self.format(record).encode())
        except Exception:
            self.handleError(record)
