"""``python -m parley_gateway``: serve the gateway with uvicorn (over TLS when
``GATEWAY_TLS_CERT`` and ``GATEWAY_TLS_KEY`` are set)."""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from parley_common.observability.logging import configure_logging
from parley_common.observability.tracing import configure_tracing
from parley_gateway.app import create_app
from parley_gateway.listen import shared_port_socket
from parley_gateway.settings import GatewaySettings
from parley_gateway.transport import tls_options


def server_config(app: ASGIApp, settings: GatewaySettings, tls: dict[str, Any]) -> uvicorn.Config:
    """How uvicorn serves the gateway: every audio frame of every session goes through the
    event loop, the HTTP/WebSocket layer and this config's choices, twice."""
    return uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        # The event loop and HTTP parser in C (uvloop is a dependency, so "auto" would pick
        # it too; said here so that losing it fails loudly instead of slowing every frame).
        loop="uvloop",
        http="httptools",
        # No permessage-deflate: PCM frames do not compress, and deflating every 20 ms
        # frame one way and inflating it the other costs CPU on each.
        ws_per_message_deflate=False,
        # The largest any socket takes; the native one refuses bigger frames itself.
        ws_max_size=max(settings.max_ws_message_bytes, settings.max_ws_recording_bytes),
        timeout_graceful_shutdown=5,
        **tls,
    )


def main() -> None:
    """Run the gateway until SIGINT/SIGTERM. A bad TLS pair, or a public address without
    token keys, stops it before it listens, with a message naming the variable."""
    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level)
    configure_tracing("gateway")
    try:
        tls = tls_options(settings.tls_cert, settings.tls_key)
        app = create_app(settings)
    except (ValueError, RuntimeError) as exc:  # bad TLS files, no token key off loopback
        raise SystemExit(f"parley-gateway: {exc}") from None
    server = uvicorn.Server(server_config(app, settings, tls))
    sockets = None
    if settings.reuse_port:  # one of several gateway processes on this port
        try:
            sockets = [shared_port_socket(settings.http_host, settings.http_port)]
        except OSError as exc:
            where = f"{settings.http_host}:{settings.http_port}"
            raise SystemExit(f"parley-gateway: cannot listen on {where}: {exc}") from None
    server.run(sockets=sockets)
    if not server.started:
        sys.exit(3)  # as uvicorn.run does: it never listened


if __name__ == "__main__":
    main()
