"""A service whose native library is still compiling when ``parley up`` starts.

On a first run ``make up`` does not wait for llama.cpp to compile (minutes on two cores):
``scripts/bootstrap.sh`` builds it in the background and leaves a marker file in the
virtualenv, ``module=parley_llm``, ``pid=`` (the build's) and ``log=``, which the build deletes
once its wheel is installed (or marks ``failed``). While a live build is marked, the launcher
starts that module through ``python -m parley_launcher.pending_build parley_llm``, which waits
for the marker to go and then becomes the service, and the URL does not wait for it.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

MARKER_NAME = ".parley-pending-build"
MARKER_ENV = "PARLEY_BUILD_MARKER"
POLL_S = 1.0
# Ninja's progress ("[12/78]") in the build's verbose log (a few MB, with thousands of lines
# of compiler warnings between two steps).
_STEP = re.compile(rb"^\s*\[(\d+)/(\d+)\]", re.MULTILINE)


@dataclass(frozen=True)
class PendingBuild:
    """A background build that a service waits for."""

    module: str
    pid: int
    log: Path

    def step(self) -> str | None:
        """The build's last "12/78" step, or None before it has one."""
        try:
            text = self.log.read_bytes()
        except OSError:
            return None
        steps = _STEP.findall(text)
        return f"{steps[-1][0].decode()}/{steps[-1][1].decode()}" if steps else None

    def describe(self) -> str:
        """What is being built and how far, for the terminal."""
        step = self.step()
        progress = f" (step {step})" if step else ""
        return f"llama.cpp is still compiling{progress}; starts when it is done"


def marker_path() -> Path:
    """The marker of the virtualenv this launcher runs from (``$PARLEY_BUILD_MARKER`` to put
    it elsewhere)."""
    return Path(os.environ.get(MARKER_ENV) or Path(sys.prefix) / MARKER_NAME)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    return True


def pending(marker: Path | None = None) -> PendingBuild | None:
    """The live build marked in ``marker`` (default ``marker_path()``), else None: no marker,
    a failed build, or one whose process is gone (the service then starts and says what is
    missing)."""
    try:
        text = (marker or marker_path()).read_text()
    except OSError:
        return None
    fields = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    if "failed" in text.splitlines() or not fields.get("pid", "").isdigit():
        return None
    build = PendingBuild(fields.get("module", ""), int(fields["pid"]), Path(fields.get("log", "")))
    return build if build.module and _alive(build.pid) else None


def module_args(module: str, marker: Path | None = None) -> list[str]:
    """The ``python`` arguments that run ``module``: through the waiter while its build is
    pending."""
    build = pending(marker)
    if build is not None and build.module == module:
        return ["-m", __name__, module]
    return ["-m", module]


def main() -> None:
    """Wait for the pending build of ``argv[1]`` to end, then become that module."""
    module = sys.argv[1]
    build = pending()
    if build is not None and build.module == module:
        line = {"level": "info", "msg": "waiting for llama.cpp to compile", "log": str(build.log)}
        print(json.dumps(line), flush=True)
        while (build := pending()) is not None and build.module == module:
            time.sleep(POLL_S)
    os.execv(sys.executable, [sys.executable, "-m", module])


if __name__ == "__main__":
    main()
