"""deploy/k8s, statically (no cluster here): every document valid against the Kubernetes
JSON schemas kubernetes-validate ships (strict: unknown fields refused) for the oldest and
newest Kubernetes it knows of ours, the kustomization against SchemaStore's schema, and per
service a Deployment probed on /health with resources and a drain period, configuration from
the ConfigMap and secrets from Secrets, a PodDisruptionBudget, a Service, and for the session
services an HPA on the active-sessions metric the Prometheus adapter serves."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from . import compose_env, schemas
from .layout import K8S, service, service_names
from .metrics_in_code import defined_metrics

KUBERNETES_VERSIONS = ("1.30", "1.37")
SESSION_SERVICES = ("gateway", "stt", "llm", "tts")
SECRET_NAMES = ("SECRET", "PASSWORD", "API_KEY", "DATABASE_URL", "TOKEN")
ADAPTER_VALUES = K8S / "prometheus-adapter" / "values.yaml"


@cache
def kustomization() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    return loaded


def documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@cache
def resources() -> tuple[tuple[str, dict[str, Any]], ...]:
    """(file, document) of everything the kustomization applies (read once: tests that change
    a document change a copy)."""
    return tuple((f, d) for f in kustomization()["resources"] for d in documents(K8S / f))


def _ids() -> list[str]:
    return [f"{f}:{d['kind']}/{d['metadata']['name']}" for f, d in resources()]


def of_kind(kind: str, name: str) -> dict[str, Any]:
    (found,) = [d for _, d in resources() if d["kind"] == kind and d["metadata"]["name"] == name]
    return found


def container(name: str) -> dict[str, Any]:
    spec = of_kind("Deployment", f"parley-{name}")["spec"]["template"]["spec"]
    (only,) = spec["containers"]
    found: dict[str, Any] = only
    return found


def config_map() -> dict[str, str]:
    data: dict[str, str] = of_kind("ConfigMap", "parley-config")["data"]
    return data


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize(("where", "document"), resources(), ids=_ids())
def test_document_matches_the_kubernetes_schema(
    where: str, document: dict[str, Any], version: str
) -> None:
    kubernetes_validate.validate(document, version, strict=True)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(readinesProbe={}),
        lambda d: d["spec"]["template"]["spec"].update(terminationGracePeriodSeconds="60s"),
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(ports=[{"port": 1}]),
    ],
)
def test_schema_validation_is_live(change: Any) -> None:
    broken = copy.deepcopy(of_kind("Deployment", "parley-gateway"))
    change(broken)
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[-1], strict=True)


def test_kustomization_matches_its_schema_and_lists_every_manifest() -> None:
    assert schemas.errors(schemas.schemastore("kustomization.yaml"), kustomization()) == []
    manifests = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kustomization()["resources"]) == manifests
    images = {i["name"] for i in kustomization()["images"]}
    assert images == {f"parley/{name}" for name in service_names()}


@pytest.mark.parametrize("name", service_names())
def test_deployment_runs_the_service_image_on_its_port(name: str) -> None:
    svc = service(name)
    spec = container(name)
    assert spec["image"].rsplit(":", 1)[0] == f"parley/{name}"
    (port,) = spec["ports"]
    assert port["containerPort"] == svc.port
    assert config_map()[f"{svc.prefix}_HTTP_PORT"] == str(svc.port)
    assert config_map()[f"{svc.prefix}_HTTP_HOST"] == "0.0.0.0"
    annotations = of_kind("Deployment", f"parley-{name}")["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert annotations["prometheus.io/port"] == str(svc.port)
    assert annotations["prometheus.io/path"] == "/metrics"


@pytest.mark.parametrize("name", service_names())
def test_probes_ask_health_on_the_service_port(name: str) -> None:
    spec = container(name)
    (port,) = spec["ports"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        check = spec[probe]["httpGet"]
        assert check["path"] == "/health", probe
        assert check["port"] in (port["name"], port["containerPort"]), probe
    # A pod leaves the endpoints before liveness would restart it.
    readiness, liveness = spec["readinessProbe"], spec["livenessProbe"]
    assert readiness["periodSeconds"] * readiness["failureThreshold"] < (
        liveness["periodSeconds"] * liveness["failureThreshold"]
    )


@pytest.mark.parametrize("name", service_names())
def test_resources_are_requested_and_memory_bounded(name: str) -> None:
    resources_ = container(name)["resources"]
    assert set(resources_["requests"]) >= {"cpu", "memory"}
    assert "memory" in resources_["limits"]


@pytest.mark.parametrize("name", service_names())
def test_drain_period_matches_compose(name: str) -> None:
    pod = of_kind("Deployment", f"parley-{name}")["spec"]["template"]["spec"]
    stop = compose_env.loaded(compose_env.SAMPLE_ENV)["services"][name]["stop_grace_period"]
    assert f"{pod['terminationGracePeriodSeconds']}s" == stop
    assert pod["terminationGracePeriodSeconds"] >= 30
    strategy = of_kind("Deployment", f"parley-{name}")["spec"]["strategy"]
    assert strategy["rollingUpdate"]["maxUnavailable"] == 0


@pytest.mark.parametrize("name", service_names())
def test_pod_runs_as_the_image_non_root_user(name: str) -> None:
    pod = of_kind("Deployment", f"parley-{name}")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert container(name)["securityContext"]["allowPrivilegeEscalation"] is False


@pytest.mark.parametrize("name", service_names())
def test_configuration_from_the_config_map_and_secrets_only_by_reference(name: str) -> None:
    spec = container(name)
    assert {"configMapRef": {"name": "parley-config"}} in spec["envFrom"]
    for source in spec["envFrom"]:
        if "secretRef" in source:
            assert source["secretRef"].get("optional") is True
    for variable in spec.get("env", []):
        if any(word in variable["name"] for word in SECRET_NAMES):
            assert "value" not in variable, variable["name"]
            assert "secretKeyRef" in variable["valueFrom"], variable["name"]
    for key in config_map():
        assert not any(word in key for word in SECRET_NAMES), key


def test_gateway_takes_the_jwt_secret_from_a_secret() -> None:
    env = {v["name"]: v for v in container("gateway").get("env", [])}
    reference = env["PARLEY_JWT_SECRET"]["valueFrom"]["secretKeyRef"]
    assert reference["name"] == "parley-secrets"
    assert reference.get("optional") is not True


@pytest.mark.parametrize("name", service_names())
def test_pod_disruption_budget_covers_the_deployment(name: str) -> None:
    deployment = of_kind("Deployment", f"parley-{name}")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    budget = of_kind("PodDisruptionBudget", f"parley-{name}")["spec"]
    assert budget["selector"]["matchLabels"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert "maxUnavailable" in budget or "minAvailable" in budget


@pytest.mark.parametrize("name", service_names())
def test_service_selects_the_pods_and_their_named_port(name: str) -> None:
    labels = of_kind("Deployment", f"parley-{name}")["spec"]["template"]["metadata"]["labels"]
    spec = of_kind("Service", f"parley-{name}")["spec"]
    assert spec["selector"].items() <= labels.items()
    names = {p["name"] for p in container(name)["ports"]}
    for port in spec["ports"]:
        assert port["targetPort"] in names


def test_only_the_session_services_autoscale() -> None:
    scaled = {
        d["spec"]["scaleTargetRef"]["name"]
        for _, d in resources()
        if d["kind"] == ("HorizontalPodAutoscaler")
    }
    assert scaled == {f"parley-{name}" for name in SESSION_SERVICES}


@pytest.mark.parametrize("name", SESSION_SERVICES)
def test_autoscaler_targets_active_sessions_per_pod(name: str) -> None:
    deployment = of_kind("Deployment", f"parley-{name}")
    hpa = of_kind("HorizontalPodAutoscaler", f"parley-{name}")["spec"]
    assert hpa["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    # The HPA owns the replica count: a replicas field would fight it on every apply.
    assert "replicas" not in deployment["spec"]
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    (metric,) = hpa["metrics"]
    assert metric["type"] == "Pods"
    assert metric["pods"]["metric"]["name"] == "parley_active_sessions"
    assert metric["pods"]["target"]["type"] == "AverageValue"


def test_the_prometheus_adapter_serves_the_autoscaling_metric() -> None:
    values = yaml.safe_load(ADAPTER_VALUES.read_text())
    (rule,) = values["rules"]["custom"]
    assert rule["seriesQuery"].startswith("parley_active_sessions{")
    assert rule["name"]["as"] == "parley_active_sessions"
    assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}
    gauges = {m.name for m in defined_metrics() if m.kind == "gauge"}
    assert "parley_active_sessions" in gauges


def test_nats_values_make_a_jetstream_cluster_for_the_stream_replicas() -> None:
    values = yaml.safe_load((K8S / "nats" / "values.yaml").read_text())["config"]
    assert values["jetstream"]["enabled"] is True
    assert values["jetstream"]["fileStore"]["pvc"]["enabled"] is True
    assert values["cluster"]["enabled"] is True
    assert values["cluster"]["replicas"] == int(config_map()["PARLEY_EVENTS_REPLICAS"])
    assert config_map()["NATS_URL"].startswith("nats://nats.nats.svc")
