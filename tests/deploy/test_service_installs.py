"""Each service's dependency set, built as its Dockerfile builds it: the build stage's files
copied as the build context would send them, a fresh virtualenv (no system site-packages),
the Dockerfile's own install step run as written with ``EXTRAS=`` (the cloud image: nothing
compiles), then the service's entry module imported. pip uses this machine's configuration
and cache, so nothing beyond the package registry is reached."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from . import build_context
from .dockerfiles import build_sources, install_command
from .layout import normalize, service, service_names, services

# Six fresh installs took 7 minutes on this shared 2-core machine; by default the gateway and
# the tts worker (the example of a cloud-only image) run, all six with this set to 1.
ALL_ENV = "PARLEY_TEST_ALL_SERVICE_INSTALLS"
DEFAULT_SERVICES = ("gateway", "tts")
# The heavy local stacks that a cloud image must not carry.
LOCAL_ONLY = frozenset({"piper-tts", "llama-cpp-python", "faster-whisper"})
# Built from source while installing: Parley's own distributions only, never a compiled one.
_BUILT = re.compile(r"Building wheel for (\S+)")


def _venv(tmp: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "venv", str(tmp / "venv")], check=True, capture_output=True
    )
    return tmp / "venv" / "bin"


def _env(bin_dir: Path, extras: str) -> dict[str, str]:
    # The machine's pip configuration (index, cache) stays; nothing of this venv leaks in.
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = f"{bin_dir}:{env.get('PATH', '/usr/bin:/bin')}"
    env["EXTRAS"] = extras
    env["HF_HUB_OFFLINE"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    # Byte-compiling changes nothing of what is installed and doubles the time.
    env["PIP_NO_COMPILE"] = "1"
    return env


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", service_names())
def test_cloud_dependency_set_installs_and_imports_alone(name: str, tmp_path: Path) -> None:
    if name not in DEFAULT_SERVICES and os.environ.get(ALL_ENV) != "1":
        pytest.skip(f"{ALL_ENV}=1 installs every service (about a minute each)")
    svc = service(name)
    context = tmp_path / "context"
    build_context.copy_sources(build_sources(svc.dockerfile), context)
    bin_dir = _venv(tmp_path)
    env = _env(bin_dir, extras="")

    # The Dockerfile's RUN, through the same shell, in the same working directory (/src).
    installed = subprocess.run(
        ["sh", "-c", install_command(svc.dockerfile)],
        cwd=context,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    own = {"parley-common", svc.distribution, *(["parley-web"] if name == "gateway" else [])}
    built = {normalize(n) for n in _BUILT.findall(installed.stdout)}
    assert built <= own, f"compiled while installing: {sorted(built - own)}"

    imported = subprocess.run(
        [str(bin_dir / "python"), "-c", f"import {svc.module}.__main__"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert imported.returncode == 0, imported.stderr[-3000:]

    listed = subprocess.run(
        [str(bin_dir / "python"), "-m", "pip", "list", "--format=json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    present = {normalize(p["name"]) for p in json.loads(listed.stdout)}
    # Only this service of Parley's: no other service rides along.
    assert {p for p in present if p.startswith("parley-")} == own
    # No local stack, except what the service needs for every provider (stt's VAD model ships
    # inside faster-whisper, a base dependency), and nothing that only a local extra brings.
    local_extras = frozenset().union(*(s.extras.get("local", frozenset()) for s in services()))
    unwanted = (LOCAL_ONLY | local_extras) - svc.dependencies
    assert present & unwanted == set()
