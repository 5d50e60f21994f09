"""Each service's Dockerfile, read statically (no Docker engine here): hadolint's rules, only
its own dependencies, multi-stage with the build tools left behind, non-root, health-checked,
offline, and an install step that is the exact command the slow test runs."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import build_context
from .dockerfiles import build_sources, install_command, stages
from .layout import DOCKER, ROOT, service, service_names, services

HEALTHCHECK_SCRIPT = DOCKER / "healthcheck.py"
BUILD_TOOLS = ("build-essential", "cmake", "gcc", "g++", "make")


def expected_install(name: str) -> str:
    """The issue's install step: libs/common, the service (the gateway: and the call page),
    with the build's EXTRAS (when the service has extras) and nothing else."""
    svc = service(name)
    own = f"./services/{name}"
    if svc.extras:
        own = f'"{own}${{EXTRAS:+[$EXTRAS]}}"'
    parts = ["./libs/common", *(["./clients"] if name == "gateway" else []), own]
    return "pip install " + " ".join(parts)


def test_one_dockerfile_per_service() -> None:
    assert sorted(p.name.removesuffix(".Dockerfile") for p in DOCKER.glob("*.Dockerfile")) == (
        service_names()
    )


def test_hadolint_finds_nothing() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    files = sorted(str(p) for p in DOCKER.glob("*.Dockerfile"))
    result = subprocess.run(
        [str(hadolint), "--no-color", *files], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_is_live(tmp_path: Path) -> None:
    # The same call on a Dockerfile with an untagged base image and shell-form CMD fails.
    bad = tmp_path / "bad.Dockerfile"
    bad.write_text("FROM python\nCMD python -m x\n")
    hadolint = Path(sys.executable).parent / "hadolint"
    result = subprocess.run([str(hadolint), "--no-color", str(bad)], capture_output=True)
    assert result.returncode != 0
    assert b"DL3006" in result.stdout
    assert b"DL3025" in result.stdout


@pytest.mark.parametrize("name", service_names())
def test_install_step_is_the_issue_command(name: str) -> None:
    assert install_command(service(name).dockerfile) == expected_install(name)


@pytest.mark.parametrize("name", service_names())
def test_extras_default_is_one_the_service_declares(name: str) -> None:
    svc = service(name)
    declared = stages(svc.dockerfile)[0].args()
    if not svc.extras:
        assert "EXTRAS" not in declared
        return
    assert declared.get("EXTRAS") in svc.extras, f"EXTRAS={declared.get('EXTRAS')!r}"


@pytest.mark.parametrize("name", service_names())
def test_build_copies_only_the_service_and_its_libraries(name: str) -> None:
    expected = ["libs/common", *(["clients"] if name == "gateway" else []), f"services/{name}"]
    assert build_sources(service(name).dockerfile) == expected


@pytest.mark.parametrize("name", service_names())
def test_copied_files_are_in_the_build_context(name: str) -> None:
    rules = build_context.rules()
    for stage in stages(service(name).dockerfile):
        for origin, sources, _ in stage.copies():
            if origin is not None:
                continue
            for source in sources:
                assert (ROOT / source).exists(), source
                assert not build_context.is_ignored(source, rules), source


def test_dockerignore_leaves_out_local_state() -> None:
    rules = build_context.rules()
    for path in (
        ".venv/bin/python",
        ".git/HEAD",
        ".parley/jwt_secret",
        ".env",
        "services/stt/parley_stt.egg-info/PKG-INFO",
        "services/stt/tests/test_vad.py",
        "libs/common/parley_common/__pycache__/x.pyc",
        "clients/js/node_modules/x/index.js",
    ):
        assert build_context.is_ignored(path, rules), path
    for path in ("services/stt/parley_stt/vad.py", "clients/js/client.js", "libs/common"):
        assert not build_context.is_ignored(path, rules), path


@pytest.mark.parametrize("name", service_names())
def test_multi_stage_with_build_tools_left_behind(name: str) -> None:
    all_stages = stages(service(name).dockerfile)
    assert len(all_stages) >= 2
    final = all_stages[-1]
    # The virtualenv is copied between stages at one path, so both use the same Python.
    assert {s.base for s in all_stages} == {"${PYTHON_IMAGE}"}
    runs = " ".join(final.values("RUN"))
    assert "pip install" not in runs
    assert "apt-get install" not in runs
    assert not any(tool in runs for tool in BUILD_TOOLS)
    from_build = [(o, s) for o, s, _ in final.copies() if o is not None]
    assert from_build == [(all_stages[-2].name, ["/opt/parley"])]


def test_only_the_llm_build_compiles() -> None:
    for svc in services():
        runs = " ".join(v for s in stages(svc.dockerfile)[:-1] for v in s.values("RUN"))
        has_tools = any(tool in runs.split() for tool in BUILD_TOOLS)
        assert has_tools == (svc.name == "llm"), svc.name
        if has_tools:
            # Compilers only for the local extra (llama-cpp-python): a cloud build has none.
            assert 'if [ -n "$EXTRAS" ]' in runs


@pytest.mark.parametrize("name", service_names())
def test_final_image_runs_the_service_as_non_root_offline(name: str) -> None:
    svc = service(name)
    final = stages(svc.dockerfile)[-1]
    env = final.env()
    assert env["HF_HUB_OFFLINE"] == "1"
    assert env[f"{svc.prefix}_HTTP_HOST"] == "0.0.0.0"
    assert env[f"{svc.prefix}_HTTP_PORT"] == str(svc.port)
    assert env["PATH"].startswith("/opt/parley/bin:")
    users = final.values("USER")
    assert len(users) == 1
    uid = users[0].split(":")[0]
    assert uid.isdigit(), "a numeric user, which Kubernetes' runAsNonRoot can verify"
    assert int(uid) != 0
    assert final.values("EXPOSE") == [str(svc.port)]
    assert final.values("CMD") == [f'["python", "-m", "{svc.module}"]']


@pytest.mark.parametrize("name", service_names())
def test_healthcheck_probes_the_service_health_endpoint(name: str) -> None:
    svc = service(name)
    final = stages(svc.dockerfile)[-1]
    (check,) = final.values("HEALTHCHECK")
    options, _, command = check.partition(" CMD ")
    assert "--interval=" in options
    assert "--start-period=" in options
    script = "/usr/local/lib/parley/healthcheck.py"
    assert json.loads(command) == ["python", script, svc.prefix]
    assert (None, ["deploy/docker/healthcheck.py"], script) in final.copies()


class _Health(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[http.server.HTTPServer]:
    server = http.server.HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _probe(prefix: str, env: dict[str, str]) -> int:
    result = subprocess.run(
        [sys.executable, str(HEALTHCHECK_SCRIPT), prefix],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        timeout=30,
    )
    return result.returncode


def test_healthcheck_script_reports_the_health_status(
    health_server: http.server.HTTPServer,
) -> None:
    port = str(health_server.server_address[1])
    _Health.status = 200
    assert _probe("TTS", {"TTS_HTTP_PORT": port}) == 0
    _Health.status = 503  # degraded: NATS or PostgreSQL unreachable
    assert _probe("TTS", {"TTS_HTTP_PORT": port}) == 1
    _Health.status = 200
    assert _probe("TTS", {}) == 1  # no port configured: unhealthy, never Docker's reserved 2
    # The gateway serving TLS itself is probed over https, which a plain server fails.
    assert _probe("GATEWAY", {"GATEWAY_HTTP_PORT": port, "GATEWAY_TLS_CERT": "/c.pem"}) == 1


def test_healthcheck_script_fails_on_a_closed_port(
    health_server: http.server.HTTPServer,
) -> None:
    port = str(health_server.server_address[1])
    health_server.shutdown()
    health_server.server_close()
    assert _probe("STT", {"STT_HTTP_PORT": port}) == 1
