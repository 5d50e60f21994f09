"""Container health probe: exits 0 when this container's Parley service answers 200 on
``/health``, 1 otherwise (503 degraded, refused, timed out).

``python healthcheck.py PREFIX`` reads ``<PREFIX>_HTTP_PORT`` (``GATEWAY``, ``STT``, ...) and,
when ``<PREFIX>_TLS_CERT`` is set (the gateway serving TLS itself), probes over https. It uses
the standard library only, so one file serves every image whatever the service installs.
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence

TIMEOUT_S = 2.0


def health_url(prefix: str, env: Mapping[str, str]) -> str:
    """The loopback ``/health`` URL of the service configured by ``<prefix>_*`` variables."""
    port = env.get(f"{prefix}_HTTP_PORT", "").strip()
    if not port.isdigit():
        raise ValueError(f"{prefix}_HTTP_PORT must be set to the service's port, got {port!r}")
    scheme = "https" if env.get(f"{prefix}_TLS_CERT", "").strip() else "http"
    return f"{scheme}://127.0.0.1:{port}/health"


def probe(url: str, timeout_s: float = TIMEOUT_S) -> bool:
    """Whether ``url`` answers 200 within ``timeout_s``."""
    context = None
    if url.startswith("https:"):
        # The certificate names the public host, not 127.0.0.1: this probe asks whether the
        # process serves, not who it is.
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=timeout_s, context=context) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):  # HTTPError (503 degraded) is a URLError
        return False


def main(argv: Sequence[str]) -> int:
    """Probe the service named by ``argv[1]``; the exit status is the verdict (Docker
    reserves 2, so a misconfigured probe reports unhealthy too)."""
    if len(argv) != 2:
        print("usage: healthcheck.py PREFIX", file=sys.stderr)
        return 1
    try:
        url = health_url(argv[1].upper(), os.environ)
    except ValueError as exc:
        print(f"healthcheck: {exc}", file=sys.stderr)
        return 1
    return 0 if probe(url) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
