"""Every phone route, for the app to include in one line."""

from __future__ import annotations

from fastapi import APIRouter

from parley_gateway.telephony import telnyx_routes, twilio_routes

router = APIRouter()
router.include_router(twilio_routes.router)
router.include_router(telnyx_routes.router)
