"""What the deployment files are checked against: Parley's services as this repository defines
them (one ``services/<name>/pyproject.toml`` each), the ports ``.env.example`` documents, and
where each deployment file lives."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DOCKER = DEPLOY / "docker"
K8S = DEPLOY / "k8s"
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROMETHEUS_FILE = DEPLOY / "prometheus" / "prometheus.yml"
GRAFANA = DEPLOY / "grafana"

_PORT_LINE = re.compile(r"^(?P<prefix>[A-Z]+)_HTTP_PORT=(?P<port>\d+)\s*$", re.MULTILINE)
_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def normalize(name: str) -> str:
    """A distribution name as pip compares it (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_names(requirements: list[str]) -> frozenset[str]:
    """The normalized distribution names of PEP 508 requirement strings."""
    names = set()
    for requirement in requirements:
        match = _REQUIREMENT_NAME.match(requirement)
        assert match, f"unparseable requirement {requirement!r}"
        names.add(normalize(match.group(1)))
    return frozenset(names)


@dataclass(frozen=True)
class Service:
    """One deployable Parley service."""

    name: str
    port: int
    dependencies: frozenset[str]
    extras: dict[str, frozenset[str]]

    @property
    def prefix(self) -> str:
        """Its settings' environment prefix (``STT`` for ``STT_HTTP_PORT``)."""
        return self.name.upper()

    @property
    def module(self) -> str:
        """What ``python -m`` runs."""
        return f"parley_{self.name}"

    @property
    def distribution(self) -> str:
        return f"parley-{self.name}"

    @property
    def dockerfile(self) -> Path:
        return DOCKER / f"{self.name}.Dockerfile"

    @property
    def k8s_manifest(self) -> Path:
        return K8S / f"{self.name}.yaml"


def documented_ports() -> dict[str, int]:
    """``<PREFIX>_HTTP_PORT`` of every service, as ``.env.example`` documents it."""
    text = (ROOT / ".env.example").read_text()
    return {m["prefix"]: int(m["port"]) for m in _PORT_LINE.finditer(text)}


@cache
def services() -> tuple[Service, ...]:
    """Every service of the repository, sorted by name."""
    ports = documented_ports()
    found = []
    for pyproject in sorted((ROOT / "services").glob("*/pyproject.toml")):
        name = pyproject.parent.name
        project: dict[str, Any] = tomllib.loads(pyproject.read_text())["project"]
        assert name.upper() in ports, f".env.example documents no {name.upper()}_HTTP_PORT"
        extras = {
            extra: requirement_names(requirements)
            for extra, requirements in project.get("optional-dependencies", {}).items()
        }
        found.append(
            Service(name, ports[name.upper()], requirement_names(project["dependencies"]), extras)
        )
    return tuple(found)


def service_names() -> list[str]:
    """The names, for test parameters."""
    return [service.name for service in services()]


def service(name: str) -> Service:
    """The service called ``name``."""
    return next(s for s in services() if s.name == name)
