"""docker-compose.yml, statically (no Docker engine here): valid against the compose-spec
schema (the copy check-jsonschema ships) before and after interpolation, every service built
from its own Dockerfile and reachable on its documented port, NATS with JetStream on a volume,
PostgreSQL with pgvector, health-gated start-up, required secrets."""

from __future__ import annotations

import copy
import re
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from parley_launcher.embedded.nats_server import nats_server_binary
from parley_launcher.embedded.process import free_port

from . import compose_env, schemas
from .dockerfiles import stages
from .layout import GRAFANA, ROOT, service, service_names

ENV = compose_env.SAMPLE_ENV


def schema_errors(document: dict[str, Any]) -> list[str]:
    return schemas.errors(schemas.compose_spec(), document)


def parley(document: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = document["services"][name]
    return found


def seconds(duration: str) -> float:
    """A compose duration (``1m30s``, ``60s``) in seconds."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts, duration
    return sum(float(n) * units[u] for n, u in parts)


@pytest.mark.parametrize(
    "env",
    [None, ENV, {**ENV, "PARLEY_EXTRAS": ""}],
    ids=["raw", "interpolated", "interpolated-cloud"],
)
def test_compose_file_matches_the_compose_spec(env: dict[str, str] | None) -> None:
    document = compose_env.raw() if env is None else compose_env.loaded(env)
    assert schema_errors(document) == []


@pytest.mark.parametrize(
    ("where", "change"),
    [
        ("a misspelt key", lambda d: d["services"]["gateway"].update(enviroment={})),
        ("ports as a number", lambda d: d["services"]["gateway"].update(ports=8000)),
        (
            "an unknown depends_on condition",
            lambda d: d["services"]["stt"].update(depends_on={"nats": {"condition": "healthy"}}),
        ),
    ],
)
def test_schema_validation_is_live(where: str, change: Any) -> None:
    broken = copy.deepcopy(compose_env.loaded(ENV))
    change(broken)
    assert schema_errors(broken), where


@pytest.mark.parametrize("variable", sorted(ENV))
@pytest.mark.parametrize("value", [None, ""], ids=["unset", "empty"])
def test_secrets_are_required(variable: str, value: str | None) -> None:
    env = {k: v for k, v in ENV.items() if k != variable}
    if value is not None:
        env[variable] = value
    with pytest.raises(compose_env.MissingVariableError) as raised:
        compose_env.loaded(env)
    assert raised.value.variable == variable


def test_gateway_gets_the_jwt_secret_from_the_operator() -> None:
    gateway = parley(compose_env.loaded(ENV), "gateway")
    assert gateway["environment"]["PARLEY_JWT_SECRET"] == ENV["PARLEY_JWT_SECRET"]
    assert "${PARLEY_JWT_SECRET:?" in str(compose_env.raw()["services"]["gateway"]["environment"])


@pytest.mark.parametrize("name", service_names())
def test_service_is_built_from_its_own_dockerfile(name: str) -> None:
    build = parley(compose_env.loaded(ENV), name)["build"]
    assert build["context"] == "."
    assert (ROOT / build["dockerfile"]) == service(name).dockerfile
    assert service(name).dockerfile.exists()


@pytest.mark.parametrize("name", service_names())
def test_service_listens_on_all_interfaces_on_its_documented_port(name: str) -> None:
    svc = service(name)
    env = parley(compose_env.loaded(ENV), name)["environment"]
    assert env[f"{svc.prefix}_HTTP_HOST"] == "0.0.0.0"
    assert env[f"{svc.prefix}_HTTP_PORT"] == str(svc.port)


@pytest.mark.parametrize("name", service_names())
def test_service_reaches_nats_and_postgres_by_their_compose_names(name: str) -> None:
    document = compose_env.loaded(ENV)
    env = parley(document, name)["environment"]
    nats = urlsplit(env["NATS_URL"])
    assert (nats.scheme, nats.hostname, nats.port) == ("nats", "nats", 4222)
    if "DATABASE_URL" not in env:
        return
    db = urlsplit(env["DATABASE_URL"])
    postgres = document["services"]["postgres"]["environment"]
    assert (db.scheme, db.hostname, db.port) == ("postgresql", "postgres", 5432)
    assert db.username == postgres["POSTGRES_USER"]
    assert db.password == postgres["POSTGRES_PASSWORD"] == ENV["POSTGRES_PASSWORD"]
    assert db.path == f"/{postgres['POSTGRES_DB']}"


@pytest.mark.parametrize("name", service_names())
def test_service_starts_once_its_dependencies_are_healthy(name: str) -> None:
    document = compose_env.loaded(ENV)
    svc = parley(document, name)
    wanted = {"nats": {"condition": "service_healthy"}}
    if "DATABASE_URL" in svc["environment"]:
        wanted["postgres"] = {"condition": "service_healthy"}
    assert svc["depends_on"] == wanted


def test_every_awaited_health_is_defined() -> None:
    document = compose_env.loaded(ENV)
    for name, svc in document["services"].items():
        depends = svc.get("depends_on", {})
        for target, condition in depends.items() if isinstance(depends, dict) else []:
            if condition.get("condition") != "service_healthy":
                continue
            built = document["services"][target].get("build")
            has_image_check = bool(
                built and stages(ROOT / built["dockerfile"])[-1].values("HEALTHCHECK")
            )
            assert "healthcheck" in document["services"][target] or has_image_check, (name, target)


@pytest.mark.parametrize("name", service_names())
def test_stop_grace_period_leaves_time_to_drain(name: str) -> None:
    assert seconds(parley(compose_env.loaded(ENV), name)["stop_grace_period"]) >= 30


@pytest.mark.parametrize("name", service_names())
def test_extras_build_argument_selects_local_or_cloud(name: str) -> None:
    svc = service(name)
    local = parley(compose_env.loaded(ENV), name)["build"].get("args", {})
    cloud = parley(compose_env.loaded({**ENV, "PARLEY_EXTRAS": ""}), name)["build"].get("args", {})
    if not svc.extras:
        assert "EXTRAS" not in local
        return
    assert local["EXTRAS"] in svc.extras
    assert cloud["EXTRAS"] == ""


def test_nats_runs_jetstream_on_a_named_volume_with_its_monitoring_port() -> None:
    document = compose_env.loaded(ENV)
    nats = document["services"]["nats"]
    command = nats["command"]
    assert command[0] == "nats-server"
    assert "--jetstream" in command
    flags = dict(arg.split("=", 1) for arg in command[1:] if "=" in arg)
    volume, _, mount = nats["volumes"][0].partition(":")
    assert flags["--store_dir"] == mount
    assert volume in document["volumes"]
    monitor = flags["--http_port"]
    assert any(p.endswith(f":{monitor}:{monitor}") for p in nats["ports"])
    assert f":{monitor}/healthz" in " ".join(nats["healthcheck"]["test"])


def test_postgres_has_pgvector_a_named_volume_and_a_healthcheck() -> None:
    document = compose_env.loaded(ENV)
    postgres = document["services"]["postgres"]
    assert postgres["image"].startswith("pgvector/pgvector:")
    volume, _, mount = postgres["volumes"][0].partition(":")
    assert volume in document["volumes"]
    assert mount.startswith("/var/lib/postgresql")
    assert "pg_isready" in postgres["healthcheck"]["test"]


def _bind_mounts(svc: dict[str, Any]) -> dict[str, str]:
    mounts = {}
    for volume in svc.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            mounts[target] = source
    return mounts


def test_prometheus_and_grafana_mount_files_that_exist() -> None:
    document = compose_env.loaded(ENV)
    for name in ("prometheus", "grafana"):
        mounts = _bind_mounts(document["services"][name])
        assert mounts, name
        for source in mounts.values():
            assert (ROOT / source).exists(), source
    prometheus = document["services"]["prometheus"]
    config = f"--config.file={next(iter(_bind_mounts(prometheus)))}"
    assert config in prometheus["command"]


def test_grafana_provisioning_points_at_the_compose_paths() -> None:
    document = compose_env.loaded(ENV)
    mounts = _bind_mounts(document["services"]["grafana"])
    provider = yaml.safe_load((GRAFANA / "provisioning/dashboards/parley.yml").read_text())
    (dashboards,) = provider["providers"]
    assert mounts[dashboards["options"]["path"]] == "./deploy/grafana/dashboards"
    assert mounts["/etc/grafana/provisioning"] == "./deploy/grafana/provisioning"
    datasource = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yml").read_text())
    url = urlsplit(datasource["datasources"][0]["url"])
    assert url.hostname == "prometheus"
    assert document["services"]["prometheus"]["ports"][0].endswith(f":{url.port}")


def test_nats_command_and_healthcheck_work_with_the_nats_server_parley_runs(
    tmp_path: Path,
) -> None:
    # The compose command, run by the nats-server parley up embeds (the image's minor
    # version), on free ports and a temporary store; its healthcheck URL must then answer.
    nats = compose_env.loaded(ENV)["services"]["nats"]
    binary = nats_server_binary()
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True)
    image_minor = nats["image"].split(":")[1].split("-")[0]
    assert re.search(rf"v{re.escape(image_minor)}\.\d+", version.stdout), version.stdout
    monitor, client = free_port(), free_port()
    local = {"--store_dir": str(tmp_path / "data"), "--http_port": str(monitor)}
    args = []
    for arg in nats["command"][1:]:
        flag = arg.split("=")[0]
        args.append(f"{flag}={local[flag]}" if flag in local else arg)
    process = subprocess.Popen(
        [str(binary), *args, f"--port={client}", "--addr=127.0.0.1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = nats["healthcheck"]["test"][-1].replace(":8222/", f":{monitor}/")
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "nats-server never became healthy"
                time.sleep(0.1)
        assert (tmp_path / "data" / "jetstream").is_dir()
    finally:
        process.terminate()
        process.wait(timeout=10)
