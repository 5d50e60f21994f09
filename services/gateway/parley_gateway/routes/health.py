"""``/health`` (NATS and PostgreSQL, each reported) and ``/metrics``: the same checks and
responses as every other service's."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from parley_common.observability.health import health_response, metrics_response
from parley_gateway.routes.deps import GatewayDep

router = APIRouter(tags=["operations"])


@router.get("/health")
async def health(gateway: GatewayDep) -> JSONResponse:
    """200 when the bus and the database answer, 503 with the failing one otherwise."""
    return await health_response("gateway", gateway.runtime.checks)


@router.get("/metrics")
async def metrics() -> Response:
    """Prometheus metrics of this process."""
    return metrics_response()
