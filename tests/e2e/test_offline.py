"""The offline promise: the real-model conversation runs in a network namespace that has
nothing but loopback (Linux, root: `unshare -n`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.models]
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("unshare") is None,
    reason="needs root and unshare for a network namespace",
)
def test_conversation_with_real_models_and_no_network() -> None:
    inner = (
        "ip link set lo up && exec "
        f"{sys.executable} -m pytest -q -p no:cacheprovider "
        f"{ROOT / 'tests/conversation/test_real_models.py'}"
    )
    env = {**os.environ, "PARLEY_OFFLINE_RUN": "1", "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        ["unshare", "-n", "sh", "-c", inner],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    print(done.stdout[-5000:], done.stderr[-3000:])
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    assert "2 passed" in done.stdout
