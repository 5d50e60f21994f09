"""S2's per-chatbot voice configuration: ``GET/PUT /api/v1/voice/config/{chatbot_id}``."""

from __future__ import annotations

from fastapi import APIRouter

from parley_common.contracts.rest import VoiceConfig, VoiceConfigView
from parley_gateway.auth import CurrentUser
from parley_gateway.routes.deps import GatewayDep

router = APIRouter(prefix="/api/v1/voice/config", tags=["S2 compatibility"])


@router.get("/{chatbot_id}", response_model=VoiceConfigView)
async def get_config(
    gateway: GatewayDep, principal: CurrentUser, chatbot_id: str
) -> VoiceConfigView:
    """The chatbot's voice configuration; the defaults when none was stored yet."""
    stored = await gateway.lifecycle.voice_configs.get(chatbot_id, principal)
    return stored or VoiceConfigView(chatbot_id=chatbot_id)


@router.put("/{chatbot_id}", response_model=VoiceConfigView)
async def put_config(
    gateway: GatewayDep, principal: CurrentUser, chatbot_id: str, body: VoiceConfig
) -> VoiceConfigView:
    """Replace the chatbot's voice configuration: every later session of the chatbot starts
    with it (a session's own options win). The first user to store it owns the chatbot."""
    return await gateway.lifecycle.voice_configs.put(chatbot_id, principal, body)
