"""Tests that need a pytest process (and so an embedded PostgreSQL) of their own."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.e2e.test_nats_cluster import ISOLATED_ENV

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_the_nats_cluster_test_in_a_fresh_process() -> None:
    # Its own base temp dir: a second pytest session on the default one would make that
    # root private again under this session's running PostgreSQL.
    basetemp = tempfile.mkdtemp(prefix="parley-isolated-")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--basetemp={basetemp}",
            str(ROOT / "tests/e2e/test_nats_cluster.py"),
        ],
        cwd=ROOT,
        env={**os.environ, ISOLATED_ENV: "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-3000:]
    assert "1 passed" in done.stdout
