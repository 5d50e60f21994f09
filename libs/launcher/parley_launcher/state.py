"""``<data dir>/state.json``: what ``parley up`` runs, for ``parley status`` in another terminal.

The launcher rewrites the file (atomically) whenever a process starts or stops and removes it
when it stops; a file whose launcher is gone is stale. It holds pids, ports and addresses,
never credentials: a URL's user and password are left out.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit


def resolve_data_dir(chosen: str | None) -> Path:
    """``--data-dir``, else ``PARLEY_DATA_DIR``, else ``./.parley``, as an absolute path."""
    return Path(chosen or os.environ.get("PARLEY_DATA_DIR", ".parley")).resolve()


def state_path(data_dir: Path) -> Path:
    """The state file of a data dir."""
    return data_dir / "state.json"


def without_credentials(url: str) -> str:
    """``url`` with any ``user:password@`` removed (and no query, which may hold a password);
    a comma-separated list of URLs (a NATS cluster's seeds) keeps its commas."""
    if "," in url:
        return ",".join(
            without_credentials(part.strip()) for part in url.split(",") if part.strip()
        )
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return f"{parts.scheme}://{netloc}{parts.path}"


@dataclass
class ServiceState:
    """One supervised service."""

    port: int | None
    pid: int | None = None
    restarts: int = 0
    log: str = ""


@dataclass
class Infra:
    """NATS or PostgreSQL: where it is, and its pid when ``parley up`` started it."""

    url: str
    pid: int | None = None
    embedded: bool = True


@dataclass
class LauncherState:
    """Everything ``parley status`` needs to find and probe a running platform."""

    launcher_pid: int
    data_dir: str
    nats: Infra | None = None
    postgres: Infra | None = None
    services: dict[str, ServiceState] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)

    def to_json(self) -> str:
        """The state as the file holds it."""
        return json.dumps(asdict(self), indent=2)

    def save(self, path: Path) -> None:
        """Write the file now (see ``write_atomically``)."""
        write_atomically(path, self.to_json())

    @classmethod
    def load(cls, path: Path) -> LauncherState | None:
        """The state in ``path``, or None when there is none (or it cannot be read)."""
        try:
            raw = json.loads(path.read_text())
            return cls(
                launcher_pid=int(raw["launcher_pid"]),
                data_dir=str(raw["data_dir"]),
                nats=Infra(**raw["nats"]) if raw.get("nats") else None,
                postgres=Infra(**raw["postgres"]) if raw.get("postgres") else None,
                services={k: ServiceState(**v) for k, v in raw.get("services", {}).items()},
                started_at=float(raw.get("started_at", 0.0)),
            )
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @property
    def alive(self) -> bool:
        """Whether the launcher that wrote this state still runs."""
        return pid_alive(self.launcher_pid)


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step, so that a reader never sees half of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    tmp.replace(path)


def pid_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, under another user
    return True
