"""``/health`` (NATS and PostgreSQL, each reported) and ``/metrics``."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from parley_common.observability.health import run_checks
from parley_common.observability.metrics import render_metrics
from parley_gateway.routes.deps import GatewayDep

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health(gateway: GatewayDep) -> JSONResponse:
    """200 when the bus and the database answer, 503 with the failing one otherwise."""

    async def nats_ok() -> bool:
        return gateway.bus.connected

    async def postgres_ok() -> bool:
        async with asyncio.timeout(2):
            return bool(await gateway.pool.fetchval("SELECT 1") == 1)

    ok, checks = await run_checks({"nats": nats_ok, "postgres": postgres_ok})
    body = {"status": "ok" if ok else "degraded", "service": "gateway", "checks": checks}
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics")
async def metrics() -> Response:
    """Prometheus metrics of this process."""
    payload, content_type = render_metrics()
    return Response(payload, media_type=content_type)
