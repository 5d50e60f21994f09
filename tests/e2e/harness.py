"""Running `parley up` from a test as a user does: free ports, its own data dir, stdout and
stderr captured apart, stopped with nothing left behind."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from parley_launcher.embedded.process import free_port

PARLEY = str(Path(sys.executable).parent / "parley")


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    ports: dict[str, int]
    data_dir: Path
    out: Path
    err: Path
    # What stdout held when the URL was printed.
    startup: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    @property
    def token(self) -> str:
        """The call page's token, from the URL `parley up` printed."""
        found = re.search(r"#token=(\S+)", self.startup)
        assert found, self.startup
        return found.group(1)

    @property
    def headers(self) -> dict[str, str]:
        """The ``Authorization`` header with the page's token."""
        return {"Authorization": f"Bearer {self.token}"}

    def client(self) -> httpx.Client:
        """An HTTP client of the gateway carrying the page's token."""
        return httpx.Client(base_url=self.url, timeout=10, headers=self.headers)

    def parley(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``parley ARGS --data-dir <its data dir>`` as a second terminal would."""
        return subprocess.run(
            [PARLEY, *args, "--data-dir", str(self.data_dir)],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    def service_pid(self, name: str) -> int | None:
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                if f"parley_{name}" in child.cmdline():
                    return child.pid
            except psutil.NoSuchProcess:
                continue
        return None

    def status(self, *options: str) -> subprocess.CompletedProcess[str]:
        return self.parley("status", *options)


def wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():  # type: ignore[operator]
                return
        except (httpx.HTTPError, psutil.Error):
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def healthy(port: int) -> bool:
    return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200


def start(
    tmp: Path, services: tuple[str, ...], *options: str, env: Mapping[str, str] | None = None
) -> Running:
    """`parley up` on free ports (so that it never collides with another run) and its own
    data dir, stdout and stderr captured apart, as a terminal would show them."""
    ports = {name: free_port() for name in services}
    drop = ("NATS_URL", "DATABASE_URL", "LOG_FORMAT", "PARLEY_DATA_DIR")
    environment = {k: v for k, v in os.environ.items() if k not in drop}
    environment.update(env or {})
    environment.update({f"{name.upper()}_HTTP_PORT": str(port) for name, port in ports.items()})
    environment.update(PARLEY_NATS_PORT=str(free_port()), PARLEY_PG_PORT=str(free_port()))
    # Not under pytest's temporary root: every pytest session that starts (another run on the
    # machine) makes that root private again, and PostgreSQL's own user could not reach in.
    data_dir = Path(tempfile.mkdtemp(prefix="parley-e2e-"))
    out, err = tmp / "stdout.txt", tmp / "stderr.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [PARLEY, "up", "--data-dir", str(data_dir), *options],
            stdout=stdout,
            stderr=stderr,
            env=environment,
        )
    running = Running(proc, ports, data_dir, out, err)
    try:
        wait(
            lambda: "Parley is up" in out.read_text() or proc.poll() is not None,
            180,
            "the ready line",
        )
        assert proc.poll() is None, f"parley up exited with {proc.returncode}"
    except AssertionError as exc:
        stop(running)
        raise AssertionError(f"stdout: {out.read_text()}\nstderr: {err.read_text()}") from exc
    time.sleep(0.2)  # the blank line after the URL
    running.startup = out.read_text()
    return running


def stop(running: Running, remove: bool = False) -> None:
    if running.proc.poll() is None:
        running.proc.kill()
        running.proc.wait()
    if remove:
        shutil.rmtree(running.data_dir, ignore_errors=True)
