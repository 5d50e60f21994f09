"""A tiny ``/health`` + ``/metrics`` HTTP endpoint for services that have no HTTP API."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator, Mapping

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp as ASGIApplication

from parley_common.observability.metrics import render_metrics

HealthCheck = Callable[[], Awaitable[bool]]


async def run_checks(checks: Mapping[str, HealthCheck]) -> tuple[bool, dict[str, str]]:
    """Run every check; a check that raises counts as failed."""
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            ok = await check()
        except Exception:
            ok = False
        results[name] = "ok" if ok else "fail"
    return all(v == "ok" for v in results.values()), results


async def health_response(service: str, checks: Mapping[str, HealthCheck]) -> JSONResponse:
    """``/health`` of any service: 200 when every check passes, 503 naming the failing one."""
    ok, results = await run_checks(checks)
    body = {"status": "ok" if ok else "degraded", "service": service, "checks": results}
    return JSONResponse(body, status_code=200 if ok else 503)


def metrics_response() -> Response:
    """``/metrics`` of any service: this process's Prometheus metrics."""
    payload, content_type = render_metrics()
    return Response(payload, media_type=content_type)


def health_app(service: str, checks: Mapping[str, HealthCheck]) -> Starlette:
    """An ASGI app answering ``/health`` and ``/metrics``, for services without an HTTP API."""

    async def health(_: Request) -> JSONResponse:
        return await health_response(service, checks)

    async def metrics(_: Request) -> Response:
        return metrics_response()

    return Starlette(routes=[Route("/health", health), Route("/metrics", metrics)])


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server inside a process that owns its signals: the process decides when to
    stop and sets ``should_exit``."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def http_server(app: ASGIApplication, host: str, port: int) -> EmbeddedServer:
    """A uvicorn server that runs inside the caller's event loop and leaves signals to it."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=5,
    )
    return EmbeddedServer(config)
