"""``/health`` (NATS and PostgreSQL, each reported) and ``/metrics``: the same checks and
responses as every other service's."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from parley_common.observability.health import health_response, metrics_response
from parley_gateway.routes.deps import GatewayDep

router = APIRouter(tags=["operations"])

_HEALTH = {
    "type": "object",
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded"]},
        "service": {"type": "string"},
        "checks": {"type": "object", "additionalProperties": {"enum": ["ok", "fail"]}},
    },
    "required": ["status", "service", "checks"],
}


@router.get(
    "/health",
    responses={
        200: {"content": {"application/json": {"schema": _HEALTH}}},
        503: {"content": {"application/json": {"schema": _HEALTH}}, "description": "Degraded"},
    },
)
async def health(gateway: GatewayDep) -> JSONResponse:
    """200 when the bus and the database answer, 503 with the failing one otherwise."""
    return await health_response("gateway", gateway.runtime.checks)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics() -> Response:
    """Prometheus metrics of this process."""
    return metrics_response()
