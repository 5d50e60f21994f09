"""What `parley up` shows while it runs, driven by real service processes: a ready line per
service, the URL last, one line per death, and one line for a whole crash loop."""

from __future__ import annotations

import asyncio
import io
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from parley_common.testing import eventually
from parley_launcher import health, pending_build
from parley_launcher.console import Console
from parley_launcher.embedded.process import free_port
from parley_launcher.logfile import LogWriter
from parley_launcher.report import UpReport, crash_line
from parley_launcher.state import LauncherState
from parley_launcher.supervisor import ServiceExit, ServiceSpec, Supervisor

# A service that answers GET /health with 200 on $PORT, as Parley's services do.
HEALTHY = """
import http.server, os
class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')
    def log_message(self, *args):
        pass
print('{"level": "info", "msg": "service starting"}', flush=True)
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), Health).serve_forever()
"""
CRASHER = "raise RuntimeError('no model file at /models/x')\n"
SILENT = "import time\ntime.sleep(600)\n"


@dataclass
class Up:
    out: io.StringIO
    report: UpReport
    supervisor: Supervisor
    state_file: Path

    def lines(self) -> list[str]:
        return self.out.getvalue().splitlines()


def _spec(tmp_path: Path, name: str, body: str) -> ServiceSpec:
    (tmp_path / f"svc_{name}.py").write_text(body)
    port = free_port()
    return ServiceSpec(name, f"svc_{name}", {"PORT": str(port)}, port)


@pytest.fixture
def specs(tmp_path: Path, request: pytest.FixtureRequest) -> list[ServiceSpec]:
    bodies: dict[str, str] = request.param
    return [_spec(tmp_path, name, body) for name, body in bodies.items()]


@pytest.fixture
def grace_s() -> float:
    """How long the URL waits for a service that is not ready (a test may set its own)."""
    return 1.0


@pytest.fixture
async def up(tmp_path: Path, specs: list[ServiceSpec], grace_s: float) -> AsyncIterator[Up]:
    out = io.StringIO()
    writer = LogWriter(tmp_path / "logs")
    state_file = tmp_path / "state.json"
    state = LauncherState(os.getpid(), str(tmp_path))
    report = UpReport(Console(out), specs, state, state_file, tmp_path / "logs")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    supervisor = Supervisor(specs, env, sink=writer, events=report)
    for process in supervisor.processes:
        process.backoff_start_s = 0.05
    stop = asyncio.Event()

    async def run() -> None:
        async with httpx.AsyncClient() as client, asyncio.TaskGroup() as tg:
            for process in supervisor.processes:
                tg.create_task(health.watch(process, client, report.healthy, stop))
            tg.create_task(report.announce(stop, grace_s=grace_s))
            await supervisor.run(stop)

    task = asyncio.create_task(run())
    try:
        yield Up(out, report, supervisor, state_file)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
    writer.close()


@pytest.mark.parametrize("specs", [{"stt": HEALTHY, "gateway": HEALTHY}], indirect=True)
async def test_one_ready_line_per_service_then_the_url_last(up: Up) -> None:
    await eventually(lambda: any("Parley is up" in line for line in up.lines()), 20)
    lines = [line for line in up.lines() if line]
    gateway = up.supervisor.processes[1].spec
    assert sorted(line.split()[0] for line in lines[:2]) == ["gateway", "stt"]
    assert all(line.split()[1] == "ready" for line in lines[:2])
    assert f"port {gateway.port}" in next(line for line in lines if "gateway" in line)
    assert lines[2].startswith("Logs: ")
    assert "<service>.log" in lines[2]
    # Without a local secret there is no token to hand over.
    assert lines[-1] == f"Parley is up: http://127.0.0.1:{gateway.port}/"
    assert lines[-2].startswith(f"API docs: http://127.0.0.1:{gateway.port}/docs")
    state = LauncherState.load(up.state_file)
    assert state is not None
    assert {name: s.pid for name, s in state.services.items()} == {
        p.spec.name: p.pid for p in up.supervisor.processes
    }


@pytest.mark.parametrize("specs", [{"stt": HEALTHY, "gateway": HEALTHY}], indirect=True)
async def test_a_killed_service_gets_one_line_then_one_when_it_is_back(up: Up) -> None:
    await eventually(lambda: any("Parley is up" in line for line in up.lines()), 20)
    stt = up.supervisor.processes[0]
    os.kill(stt.pid or 0, signal.SIGKILL)
    await eventually(lambda: any("ready again" in line for line in up.lines()), 20)
    after = up.lines()[up.lines().index(next(x for x in up.lines() if "Parley is up" in x)) + 1 :]
    after = [line for line in after if line]
    assert len(after) == 2, after
    assert after[0].split()[:2] == ["stt", "stopped"]
    assert "killed by SIGKILL — restarting in 0.05s; log: " in after[0]
    assert after[1].split()[:3] == ["stt", "ready", "again"]


@pytest.mark.parametrize("specs", [{"stt": CRASHER, "gateway": HEALTHY}], indirect=True)
async def test_a_crash_loop_is_one_line_with_its_last_error(up: Up) -> None:
    stt = up.supervisor.processes[0]

    def about_stt() -> list[str]:
        # Its crash lines; "not ready yet" (the URL's grace period) may come at any moment.
        return [
            line
            for line in up.lines()
            if line.split()[:1] == ["stt"] and line.split()[1:3] != ["not", "ready"]
        ]

    await eventually(lambda: stt.restarts >= 5, 30)
    await eventually(lambda: any(x.split()[1:3] == ["crash", "loop"] for x in about_stt()), 10)
    await asyncio.sleep(0.3)  # more restarts happen meanwhile: they must not add lines
    crash_lines = about_stt()
    assert len(crash_lines) == 2, crash_lines  # the first death, then the loop
    assert crash_lines[0].split()[1] == "stopped"
    loop = crash_lines[1]
    assert loop.split()[1:3] == ["crash", "loop"]
    assert "RuntimeError: no model file at /models/x" in loop
    assert "stt.log" in loop
    assert "{" not in loop
    # The URL does not wait forever for a service that cannot start; it names it.
    await eventually(lambda: any("Parley is up" in line for line in up.lines()), 20)
    assert any(line.split()[:4] == ["stt", "not", "ready", "yet"] for line in up.lines())
    state = LauncherState.load(up.state_file)
    assert state is not None
    assert state.services["stt"].restarts >= 5


# A grace period longer than the gateway takes to start on a loaded machine.
@pytest.mark.parametrize("grace_s", [6.0])
@pytest.mark.parametrize("specs", [{"llm": SILENT, "gateway": HEALTHY}], indirect=True)
async def test_the_url_waits_for_every_service_until_the_grace_period(up: Up) -> None:
    await eventually(lambda: any("gateway" in line for line in up.lines()), 20)
    await asyncio.sleep(0.3)
    assert not any("Parley is up" in line for line in up.lines())
    await eventually(lambda: any("Parley is up" in line for line in up.lines()), 15)
    assert any(line.split()[:2] == ["llm", "not"] for line in up.lines())


@pytest.fixture
def building(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A live llama.cpp build marked for the ``svc_llm`` module; a sleeping process stands in
    for the compiler. Deleting the marker is the build installing its wheel."""
    compiler = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    log = tmp_path / "llama-cpp-build.log"
    log.write_text("  [5/78] g++ -c ggml.c\n  [6/78] g++ -c llama.cpp\n")
    marker = tmp_path / "pending-build"
    marker.write_text(f"module=svc_llm\npid={compiler.pid}\nlog={log}\n")
    monkeypatch.setenv(pending_build.MARKER_ENV, str(marker))
    yield marker
    compiler.kill()
    compiler.wait()


@pytest.mark.parametrize("grace_s", [120.0])
@pytest.mark.parametrize("specs", [{"llm": HEALTHY, "gateway": HEALTHY}], indirect=True)
async def test_a_service_whose_library_compiles_starts_after_the_url(
    building: Path, up: Up
) -> None:
    # Long before the grace period: the URL does not wait for the build.
    await eventually(lambda: any("Parley is up" in line for line in up.lines()), 30)
    llm = [line for line in up.lines() if line.split()[:1] == ["llm"]]
    assert len(llm) == 1, llm
    assert llm[0].split()[1] == "compiling"
    assert "(step 6/78)" in llm[0]
    assert "llama-cpp-build.log" in llm[0]
    assert up.lines().index(llm[0]) < up.lines().index(
        next(line for line in up.lines() if "Parley is up" in line)
    )
    # Held by the waiter, not started and crashed: no restart, no health.
    await asyncio.sleep(0.5)
    assert "llm" not in up.report.ready
    assert up.supervisor.processes[0].restarts == 0
    await asyncio.to_thread(building.unlink)
    await eventually(lambda: "llm" in up.report.ready, 30)
    assert up.lines()[-1].split()[:2] == ["llm", "ready"]
    assert up.supervisor.processes[0].restarts == 0


def test_crash_line_says_why_what_and_where() -> None:
    first = ServiceExit("exited with status 1", "ValueError: bad", 1, 1, 0.5)
    assert crash_line(first, ".parley/logs/stt.log") == (
        "exited with status 1: ValueError: bad — restarting in 0.5s; log: .parley/logs/stt.log"
    )
    loop = ServiceExit("exited with status 1", None, 4, 4, 4.0)
    assert crash_line(loop, "x.log") == (
        "keeps crashing (4 restarts, exited with status 1) — retrying with backoff up to 30s; "
        "log: x.log"
    )
