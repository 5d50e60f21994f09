"""`parley up` as a user runs it: embedded NATS + PostgreSQL and every service as its own
process; what a person sees (one ready line per component, the URL last, no JSON), the log
files, `parley status` from another terminal, sessions through both APIs, a killed service
that comes back, stopping that leaves nothing, and the JSON stream for log shippers."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
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
PARLEY = str(Path(sys.executable).parent / "parley")
READY = re.compile(r"^  (\S+)\s+ready\s")


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

    def service_pid(self, name: str) -> int | None:
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                if f"parley_{name}" in child.cmdline():
                    return child.pid
            except psutil.NoSuchProcess:
                continue
        return None

    def status(self, *options: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PARLEY, "status", "--data-dir", str(self.data_dir), *options],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )


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


def _start(tmp: Path, services: tuple[str, ...], *options: str) -> Running:
    """`parley up` on free ports (so that it never collides with another run) and its own
    data dir, stdout and stderr captured apart, as a terminal would show them."""
    ports = {name: free_port() for name in services}
    drop = ("NATS_URL", "DATABASE_URL", "LOG_FORMAT", "PARLEY_DATA_DIR")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update({f"{name.upper()}_HTTP_PORT": str(port) for name, port in ports.items()})
    env.update(PARLEY_NATS_PORT=str(free_port()), PARLEY_PG_PORT=str(free_port()))
    # Not under pytest's temporary root: every pytest session that starts (another run on the
    # machine) makes that root private again, and PostgreSQL's own user could not reach in.
    data_dir = Path(tempfile.mkdtemp(prefix="parley-e2e-"))
    out, err = tmp / "stdout.txt", tmp / "stderr.txt"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        proc = subprocess.Popen(
            [PARLEY, "up", "--data-dir", str(data_dir), *options],
            stdout=stdout,
            stderr=stderr,
            env=env,
        )
    running = Running(proc, ports, data_dir, out, err)
    try:
        _wait(
            lambda: "Parley is up" in out.read_text() or proc.poll() is not None,
            180,
            "the ready line",
        )
        assert proc.poll() is None, f"parley up exited with {proc.returncode}"
    except AssertionError as exc:
        _stop(running)
        raise AssertionError(f"stdout: {out.read_text()}\nstderr: {err.read_text()}") from exc
    time.sleep(0.2)  # the blank line after the URL
    running.startup = out.read_text()
    return running


def _stop(running: Running, remove: bool = False) -> None:
    if running.proc.poll() is None:
        running.proc.kill()
        running.proc.wait()
    if remove:
        shutil.rmtree(running.data_dir, ignore_errors=True)


@pytest.fixture(scope="module")
def parley(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running: Running | None = None
    try:
        running = _start(tmp_path_factory.mktemp("parley-up"), SERVICES)
        yield running
    finally:
        if running is not None:
            _stop(running, remove=True)


def test_a_person_sees_one_ready_line_per_component_and_the_url_last(parley: Running) -> None:
    lines = [line for line in parley.startup.splitlines() if line.strip()]
    ready = [m.group(1) for line in lines if (m := READY.match(line))]
    assert sorted(ready) == sorted(["NATS", "PostgreSQL", *SERVICES]), parley.startup
    assert ready[:2] == ["NATS", "PostgreSQL"]
    for name in SERVICES:
        line = next(line for line in lines if READY.match(line) and line.split()[0] == name)
        assert f"port {parley.ports[name]}" in line
    assert lines[-1] == f"Parley is up: {parley.url}/   (API docs: {parley.url}/docs)"
    assert any(line.startswith("Logs: ") and "logs/<service>.log" in line for line in lines)
    # No JSON for a person: not on stdout, not on stderr, no terminal codes in a file.
    assert not [line for line in parley.startup.splitlines() if line.lstrip().startswith("{")]
    assert "\x1b" not in parley.startup
    assert not [line for line in parley.err.read_text().splitlines() if line.startswith("{")]


def test_every_service_is_healthy_and_logs_json_into_its_file(parley: Running) -> None:
    health = httpx.get(f"{parley.url}/health").json()
    assert health["checks"] == {"nats": "ok", "postgres": "ok"}
    for name in SERVICES:
        _wait(lambda name=name: _healthy(parley.ports[name]), 60, f"{name} health")
        assert parley.service_pid(name) is not None
    for name in (*SERVICES, "launcher"):
        path = parley.data_dir / "logs" / f"{name}.log"
        entries = [json.loads(x) for x in path.read_text().splitlines() if x.startswith("{")]
        assert entries, f"no JSON lines in {path}"
        assert {entry["service"] for entry in entries} == {name}


def test_status_from_another_terminal_reports_every_service_healthy(parley: Running) -> None:
    with httpx.Client(base_url=parley.url, timeout=10) as client:
        sid = client.post("/api/v1/sessions", json={"user_id": "status"}).json()["id"]
        try:
            shown = parley.status("--json")
        finally:
            client.post(f"/api/v1/sessions/{sid}/end")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    report = json.loads(shown.stdout)
    parts = {part["name"]: part for part in report["parts"]}
    assert set(parts) == {"NATS", "PostgreSQL", *SERVICES}
    assert all(part["ok"] for part in parts.values()), parts
    for name in SERVICES:
        assert parts[name]["port"] == parley.ports[name]
        assert parts[name]["pid"] == parley.service_pid(name)
    assert report["sessions"] >= 1  # the session just started, held by the stt/llm/tts workers

    human = parley.status()
    assert human.returncode == 0
    for name in SERVICES:
        assert re.search(rf"^  {name}\s+healthy\s+port {parley.ports[name]}", human.stdout, re.M)


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


def test_a_killed_service_is_restarted_and_said_so_in_one_line(parley: Running) -> None:
    old = parley.service_pid("stt")
    assert old is not None
    os.kill(old, signal.SIGKILL)
    _wait(lambda: parley.service_pid("stt") not in (None, old), 30, "a new stt process")
    _wait(lambda: _healthy(parley.ports["stt"]), 60, "the new stt to be healthy")
    _wait(lambda: "ready again" in parley.out.read_text(), 30, "the recovery line")
    after = parley.out.read_text()[len(parley.startup) :].splitlines()
    about_stt = [line for line in after if line.split()[:1] == ["stt"]]
    assert len(about_stt) == 2, after
    assert about_stt[0].split()[1] == "stopped"
    assert "killed by SIGKILL" in about_stt[0]
    assert "ready again" in about_stt[1]
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
    assert parley.out.read_text().rstrip().endswith("Parley stopped.")
    assert not (parley.data_dir / "state.json").exists()
    assert parley.status().returncode == 1


def test_log_format_json_keeps_the_json_stream_on_stderr(tmp_path: Path) -> None:
    # Two light services are enough to see every stream; the whole set ran above.
    services = ("clone", "analytics")
    running = _start(tmp_path, services, "--only", ",".join(services), "--log-format", "json")
    try:
        running.proc.send_signal(signal.SIGINT)
        assert running.proc.wait(timeout=60) == 0
        lines = [line for line in running.err.read_text().splitlines() if line.strip()]
        entries = [json.loads(line) for line in lines if line.startswith("{")]
        assert len(entries) >= 0.9 * len(lines)  # a library may print a plain warning
        assert {entry["service"] for entry in entries} >= {"launcher", "clone", "analytics"}
        # stdout keeps only the headline, as before.
        shown = [line for line in running.out.read_text().splitlines() if line.strip()]
        assert shown == ["Parley is up: analytics, clone (no gateway, no URL)"]
        assert (running.data_dir / "logs" / "clone.log").stat().st_size > 0
    finally:
        _stop(running, remove=True)
