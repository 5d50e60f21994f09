"""Voices per TTS provider and the providers a deployment offers: ``/api/v1/voices``,
S1's ``/api/voice/voices/{provider}`` and S2's ``/api/v1/voice/voices``."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError

from parley_common.bus import MessageMeta
from parley_common.contracts import subjects
from parley_common.contracts.bus import (
    ProvidersReply,
    ProviderStatus,
    VoicesReply,
    VoicesRequest,
)
from parley_common.contracts.rest import ProvidersView, VoicesView
from parley_common.contracts.session import LlmProvider, SttProvider, TtsProvider
from parley_common.errors import NotFoundError, ProviderUnavailableError, ServiceUnavailableError
from parley_common.providers import test_providers_enabled
from parley_common.tokens import Principal
from parley_gateway.auth import CurrentUser, current_user
from parley_gateway.custom_voices import CustomVoiceStore
from parley_gateway.routes.deps import GatewayDep

# Voices and providers are the deployment's, not a user's: any authenticated caller sees them.
router = APIRouter(tags=["voices"], dependencies=[Depends(current_user)])


async def voices_of(
    gateway: GatewayDep, provider: str, principal: Principal | None = None
) -> VoicesView:
    """The provider's voices, and ``principal``'s own cloned voices of it first (none
    without a principal)."""
    try:
        TtsProvider(provider)
    except ValueError as exc:
        raise NotFoundError(f"no TTS provider named '{provider}'", code="unknown_provider") from exc
    try:
        reply = await gateway.bus.request(
            subjects.query("tts", "voices"),
            VoicesRequest(provider=provider),
            MessageMeta(session_id=""),
            timeout=gateway.settings.assign_timeout_s,
        )
    except (NoRespondersError, NatsTimeoutError) as exc:
        raise ServiceUnavailableError("no tts worker is available") from exc
    answer = VoicesReply.model_validate_json(reply.data)
    if answer.error is not None:
        raise ProviderUnavailableError(answer.error)
    # The caller's cloned voices first, marked custom: no other user ever sees them.
    store = CustomVoiceStore(gateway.pool)
    custom = [] if principal is None else await store.voice_entries(principal, provider)
    return VoicesView(provider=provider, voices=[*custom, *answer.voices])


@router.get("/api/v1/voices", response_model=VoicesView)
async def list_voices(
    gateway: GatewayDep, principal: CurrentUser, provider: str = "local"
) -> VoicesView:
    """Voices of a TTS provider (``?provider=local`` by default), with the caller's cloned
    voices of that provider first (``custom: true``)."""
    return await voices_of(gateway, provider, principal)


@router.get("/api/voice/voices/{provider}", tags=["S1 compatibility"])
async def s1_voices(gateway: GatewayDep, principal: CurrentUser, provider: str) -> dict[str, Any]:
    """S1's voice list: ``{"success": true, "provider", "voices": [...]}``."""
    view = await voices_of(gateway, provider, principal)
    return {"success": True, **view.model_dump(mode="json")}


@router.get("/api/v1/voice/voices", tags=["S2 compatibility"])
async def s2_voices(
    gateway: GatewayDep, principal: CurrentUser, provider: str = "local"
) -> dict[str, Any]:
    """S2's voice list."""
    view = await voices_of(gateway, provider, principal)
    return {"voices": [v.model_dump(mode="json") for v in view.voices], "provider": provider}


@router.get("/api/v1/providers", response_model=ProvidersView)
async def list_providers(gateway: GatewayDep) -> ProvidersView:
    """The providers of each service as its workers report them; when a service has no
    worker, each of its providers is listed as unavailable with that reason."""
    kinds: dict[str, type[SttProvider] | type[LlmProvider] | type[TtsProvider]] = {
        "stt": SttProvider,
        "llm": LlmProvider,
        "tts": TtsProvider,
    }

    async def ask(service: str) -> list[ProviderStatus]:
        try:
            reply = await gateway.bus.request(
                subjects.query(service, "providers"),
                b"",
                MessageMeta(session_id=""),
                timeout=gateway.settings.assign_timeout_s,
            )
        except (NoRespondersError, NatsTimeoutError):
            reason = f"no {service} worker is running"
            return [
                ProviderStatus(name=p.value, available=False, reason=reason)
                for p in kinds[service]
                if p.value != "scripted" or test_providers_enabled()
            ]
        return list(ProvidersReply.model_validate_json(reply.data).providers)

    stt, llm, tts = await asyncio.gather(*(ask(service) for service in kinds))
    return ProvidersView(stt=stt, llm=llm, tts=tts)
