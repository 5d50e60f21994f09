"""`parley up` as a user runs it: embedded NATS + PostgreSQL and every service as its own
process; sessions through both APIs; a killed service comes back; stopping leaves nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest
from websockets.sync.client import connect

from parley_launcher.embedded.process import free_port

pytestmark = pytest.mark.e2e
SERVICES = ("gateway", "stt", "llm", "tts", "clone", "analytics")


@dataclass
class Running:
    proc: subprocess.Popen[bytes]
    ports: dict[str, int]
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports['gateway']}"

    def service_pid(self, name: str) -> int | None:
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                if f"parley_{name}" in child.cmdline():
                    return child.pid
            except psutil.NoSuchProcess:
                continue
        return None


def _wait(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():  # type: ignore[operator]
                return
        except (httpx.HTTPError, psutil.Error):
            pass
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _healthy(port: int) -> bool:
    return httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200


@pytest.fixture(scope="module")
def parley(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    data = tmp_path_factory.mktemp("parley-up")
    ports = {name: free_port() for name in SERVICES}
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
    env.update({f"{name.upper()}_HTTP_PORT": str(port) for name, port in ports.items()})
    env.update(PARLEY_NATS_PORT=str(free_port()), PARLEY_PG_PORT=str(free_port()))
    log = data / "parley.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "parley"), "up", "--data-dir", str(data / "d")],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    running = Running(proc, ports, log)
    try:
        _wait(lambda: "Parley is up" in log.read_text(), 180, "the ready line")
        yield running
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_every_service_is_healthy_and_the_url_is_printed(parley: Running) -> None:
    assert f"Parley is up: {parley.url}/" in parley.log.read_text()
    health = httpx.get(f"{parley.url}/health").json()
    assert health["checks"] == {"nats": "ok", "postgres": "ok"}
    for name in SERVICES:
        _wait(lambda name=name: _healthy(parley.ports[name]), 60, f"{name} health")
        assert parley.service_pid(name) is not None
    lines = [
        json.loads(line) for line in parley.log.read_text().splitlines() if line.startswith("{")
    ]
    assert {line["service"] for line in lines} >= {"launcher", "gateway", "analytics"}


def test_sessions_through_both_apis_and_websocket(parley: Running) -> None:
    with httpx.Client(base_url=parley.url, timeout=10) as client:
        created = client.post("/api/v1/sessions", json={"user_id": "e2e"})
        assert created.status_code == 201, created.text
        sid = created.json()["id"]
        assert client.get(f"/api/v1/sessions/{sid}").json()["status"] == "active"
        with connect(created.json()["ws_url"]) as ws:
            assert json.loads(ws.recv(timeout=5))["type"] == "ready"
            ws.send(json.dumps({"type": "ping", "ts": 1.0}))
            assert json.loads(ws.recv(timeout=5))["type"] == "pong"
        assert client.post(f"/api/v1/sessions/{sid}/end").json()["status"] == "ended"
        assert client.get(f"/api/v1/sessions/{sid}").json()["status"] == "ended"

        s1 = client.post("/api/voice/start", json={"userId": "e2e-s1"}).json()
        assert s1["success"] is True
        s1_id = s1["session"]["id"]
        with connect(s1["session"]["wsUrl"]) as ws:
            assert json.loads(ws.recv(timeout=5))["type"] == "ready"
            ws.send(json.dumps({"type": "ping"}))
            assert json.loads(ws.recv(timeout=5))["type"] == "pong"
        assert client.get(f"/api/voice/{s1_id}/transcript").json()["success"] is True
        assert client.post(f"/api/voice/{s1_id}/end").json()["status"] == "ended"
        assert client.get(f"/api/v1/sessions/{s1_id}").json()["status"] == "ended"


def test_a_killed_service_is_restarted(parley: Running) -> None:
    old = parley.service_pid("stt")
    assert old is not None
    os.kill(old, signal.SIGKILL)
    _wait(lambda: parley.service_pid("stt") not in (None, old), 30, "a new stt process")
    _wait(lambda: _healthy(parley.ports["stt"]), 60, "the new stt to be healthy")
    assert "killed by SIGKILL" in parley.log.read_text()
    # The restarted worker takes sessions again.
    created = httpx.post(f"{parley.url}/api/v1/sessions", json={}, timeout=10)
    assert created.status_code == 201


def test_stopping_leaves_no_process_behind(parley: Running) -> None:
    descendants = psutil.Process(parley.proc.pid).children(recursive=True)
    assert len(descendants) >= len(SERVICES) + 2  # services + nats-server + postgres
    parley.proc.send_signal(signal.SIGINT)
    assert parley.proc.wait(timeout=60) == 0
    _, alive = psutil.wait_procs(descendants, timeout=10)
    assert alive == [], [p.pid for p in alive]
