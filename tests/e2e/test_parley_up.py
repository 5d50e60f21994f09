"""`parley up` as a user runs it: embedded NATS + PostgreSQL and every service as its own
process; what a person sees (one ready line per component, the URL last, no JSON), the log
files, `parley status` from another terminal, sessions through both APIs, a killed service
that comes back, stopping that leaves nothing, and the JSON stream for log shippers."""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from tests.conversation.test_metrics import ID_LIKE

from .harness import Running, healthy, start, stop, wait

pytestmark = pytest.mark.e2e
SERVICES = ("gateway", "stt", "llm", "tts", "clone", "analytics")
READY = re.compile(r"^  (\S+)\s+ready\s")


@pytest.fixture(scope="module")
def parley(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running: Running | None = None
    try:
        running = start(tmp_path_factory.mktemp("parley-up"), SERVICES)
        yield running
    finally:
        if running is not None:
            stop(running, remove=True)


def test_a_person_sees_one_ready_line_per_component_and_the_url_last(parley: Running) -> None:
    lines = [line for line in parley.startup.splitlines() if line.strip()]
    ready = [m.group(1) for line in lines if (m := READY.match(line))]
    assert sorted(ready) == sorted(["NATS", "PostgreSQL", *SERVICES]), parley.startup
    assert ready[:2] == ["NATS", "PostgreSQL"]
    for name in SERVICES:
        line = next(line for line in lines if READY.match(line) and line.split()[0] == name)
        assert f"port {parley.ports[name]}" in line
    assert lines[-1] == f"Parley is up: {parley.url}/#token={parley.token}"
    assert lines[-2].startswith(f"API docs: {parley.url}/docs")
    assert any(line.startswith("Logs: ") and "logs/<service>.log" in line for line in lines)
    # No JSON for a person: not on stdout, not on stderr, no terminal codes in a file.
    assert not [line for line in parley.startup.splitlines() if line.lstrip().startswith("{")]
    assert "\x1b" not in parley.startup
    assert not [line for line in parley.err.read_text().splitlines() if line.startswith("{")]


def test_every_service_is_healthy_and_logs_json_into_its_file(parley: Running) -> None:
    health = httpx.get(f"{parley.url}/health").json()
    assert health["checks"] == {"nats": "ok", "postgres": "ok"}
    for name in SERVICES:
        wait(lambda name=name: healthy(parley.ports[name]), 60, f"{name} health")
        assert parley.service_pid(name) is not None
    for name in (*SERVICES, "launcher"):
        path = parley.data_dir / "logs" / f"{name}.log"
        entries = [json.loads(x) for x in path.read_text().splitlines() if x.startswith("{")]
        assert entries, f"no JSON lines in {path}"
        assert {entry["service"] for entry in entries} == {name}


def test_every_service_exposes_prometheus_metrics_of_its_own(parley: Running) -> None:
    for name in SERVICES:
        text = httpx.get(f"http://127.0.0.1:{parley.ports[name]}/metrics", timeout=10).text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        lag = families["parley_event_loop_lag_seconds"]
        assert {s.labels["service"] for s in lag.samples} == {name}, name
        for family in families.values():
            for sample in family.samples:
                for value in sample.labels.values():
                    assert not ID_LIKE.search(value), (name, family.name, sample.labels)
    workers = httpx.get(f"http://127.0.0.1:{parley.ports['stt']}/metrics", timeout=10).text
    assert "parley_active_sessions" in workers


def test_status_from_another_terminal_reports_every_servicehealthy(parley: Running) -> None:
    with parley.client() as client:
        sid = client.post("/api/v1/sessions", json={}).json()["id"]
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
    with parley.client() as client:
        created = client.post("/api/v1/sessions", json={})
        assert created.status_code == 201, created.text
        sid = created.json()["id"]
        assert created.json()["user_id"] == "local"
        assert client.get(f"/api/v1/sessions/{sid}").json()["status"] == "active"
        with connect(f"{created.json()['ws_url']}?token={parley.token}") as ws:
            assert json.loads(ws.recv(timeout=5))["type"] == "ready"
            ws.send(json.dumps({"type": "ping", "ts": 1.0}))
            assert json.loads(ws.recv(timeout=5))["type"] == "pong"
        assert client.post(f"/api/v1/sessions/{sid}/end").json()["status"] == "ended"
        assert client.get(f"/api/v1/sessions/{sid}").json()["status"] == "ended"

        s1 = client.post("/api/voice/start", json={"userId": "local"}).json()
        assert s1["success"] is True
        s1_id = s1["session"]["id"]
        with connect(f"{s1['session']['wsUrl']}?token={parley.token}") as ws:
            assert json.loads(ws.recv(timeout=5))["type"] == "ready"
            ws.send(json.dumps({"type": "ping"}))
            assert json.loads(ws.recv(timeout=5))["type"] == "pong"
        assert client.get(f"/api/voice/{s1_id}/transcript").json()["success"] is True
        assert client.post(f"/api/voice/{s1_id}/end").json()["status"] == "ended"
        assert client.get(f"/api/v1/sessions/{s1_id}").json()["status"] == "ended"


def test_the_gateway_wants_a_token_and_parley_token_mints_one(parley: Running) -> None:
    assert httpx.get(f"{parley.url}/api/v1/providers", timeout=10).status_code == 401
    minted = parley.parley("token", "--user", "bob")
    assert minted.returncode == 0, minted.stderr
    bob = {"Authorization": f"Bearer {minted.stdout.strip()}"}
    created = httpx.post(f"{parley.url}/api/v1/sessions", headers=bob, timeout=10)
    assert created.status_code == 201, created.text
    assert created.json()["user_id"] == "bob"
    sid = created.json()["id"]
    # The page's user does not see bob's session.
    mine = httpx.get(f"{parley.url}/api/v1/sessions/{sid}", headers=parley.headers, timeout=10)
    assert mine.status_code == 404
    httpx.post(f"{parley.url}/api/v1/sessions/{sid}/end", headers=bob, timeout=10)
    # The secret stays in the data dir, readable by its owner only, and out of every log.
    secret = parley.data_dir / "jwt_secret"
    assert secret.stat().st_mode & 0o077 == 0
    for log in (parley.data_dir / "logs").glob("*.log"):
        assert secret.read_text().strip() not in log.read_text(errors="replace"), log.name
        assert parley.token not in log.read_text(errors="replace"), log.name


def test_a_killed_service_is_restarted_and_said_so_in_one_line(parley: Running) -> None:
    old = parley.service_pid("stt")
    assert old is not None
    os.kill(old, signal.SIGKILL)
    wait(lambda: parley.service_pid("stt") not in (None, old), 30, "a new stt process")
    wait(lambda: healthy(parley.ports["stt"]), 60, "the new stt to be healthy")
    wait(
        lambda: any(
            line.split()[:1] == ["stt"] and "ready again" in line
            for line in parley.out.read_text().splitlines()
        ),
        30,
        "stt's recovery line",
    )
    after = parley.out.read_text()[len(parley.startup) :].splitlines()
    about_stt = [line for line in after if line.split()[:1] == ["stt"]]
    assert len(about_stt) == 2, after
    assert about_stt[0].split()[1] == "stopped"
    assert "killed by SIGKILL" in about_stt[0]
    assert "ready again" in about_stt[1]
    # The restarted worker takes sessions again.
    created = httpx.post(f"{parley.url}/api/v1/sessions", headers=parley.headers, timeout=10)
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
    running = start(tmp_path, services, "--only", ",".join(services), "--log-format", "json")
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
        stop(running, remove=True)
