"""deploy/prometheus/prometheus.yml: valid against SchemaStore's Prometheus schema, and its
scrape jobs cover every Parley service at the compose name and port the service listens on."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest
import yaml

from . import compose_env, schemas
from .layout import PROMETHEUS_FILE, service, service_names

ENV = compose_env.SAMPLE_ENV

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w|y)$")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}


def config() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(PROMETHEUS_FILE.read_text())
    return loaded


def jobs() -> dict[str, dict[str, Any]]:
    return {job["job_name"]: job for job in config()["scrape_configs"]}


def targets(job: dict[str, Any]) -> list[tuple[str, int]]:
    """(host, port) of every target of a job, static or found through DNS."""
    found = []
    for static in job.get("static_configs", []):
        for target in static["targets"]:
            host, _, port = target.rpartition(":")
            found.append((host, int(port)))
    for dns in job.get("dns_sd_configs", []):
        assert dns.get("type", "SRV") == "A", "an A lookup gives the port from the config"
        found.extend((name, int(dns["port"])) for name in dns["names"])
    return found


def seconds(duration: str) -> float:
    match = _DURATION.match(duration)
    assert match, duration
    return int(match[1]) * _SECONDS[match[2]]


def test_config_matches_the_prometheus_schema() -> None:
    assert schemas.errors(schemas.schemastore("prometheus.json"), config()) == []


@pytest.mark.parametrize(
    "change",
    [
        lambda c: c["global"].update(scrape_interval="15 seconds"),
        lambda c: c["scrape_configs"][0].update(static_configs=[{"targets": "gateway:8000"}]),
        lambda c: c["scrape_configs"][0]["dns_sd_configs"][0].update(typ="A"),
    ],
)
def test_schema_validation_is_live(change: Any) -> None:
    broken = copy.deepcopy(config())
    change(broken)
    assert schemas.errors(schemas.schemastore("prometheus.json"), broken)


def test_job_names_are_unique() -> None:
    names = [job["job_name"] for job in config()["scrape_configs"]]
    assert len(names) == len(set(names))


def test_scrape_timeout_fits_the_interval() -> None:
    settings = config()["global"]
    assert seconds(settings["scrape_timeout"]) <= seconds(settings["scrape_interval"])


@pytest.mark.parametrize("name", service_names())
def test_every_service_is_scraped_where_it_listens(name: str) -> None:
    job = jobs()[name]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job.get("scheme", "http") == "http"
    listening = compose_env.loaded(ENV)["services"][name]["environment"]
    port = int(listening[f"{service(name).prefix}_HTTP_PORT"])
    assert targets(job) == [(name, port)]
    assert port == service(name).port


def test_no_target_points_where_nothing_listens() -> None:
    document = compose_env.loaded(ENV)["services"]
    parley = set(service_names())
    for name, job in jobs().items():
        for host, port in targets(job):
            if host == "localhost":  # Prometheus itself, inside its own container
                assert name == "prometheus"
                assert any(p.endswith(f":{port}") for p in document["prometheus"]["ports"])
                continue
            assert host in parley, f"job {name}: {host} is no Parley service"
