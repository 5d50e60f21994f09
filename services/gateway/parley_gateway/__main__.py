"""``python -m parley_gateway``: serve the gateway with uvicorn."""

from __future__ import annotations

import uvicorn

from parley_common.observability.logging import configure_logging
from parley_gateway.app import create_app
from parley_gateway.settings import GatewaySettings


def main() -> None:
    """Run the gateway until SIGINT/SIGTERM."""
    settings = GatewaySettings()
    configure_logging("gateway", settings.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        ws_max_size=settings.max_ws_message_bytes,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
