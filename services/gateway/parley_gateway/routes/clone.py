"""Voice cloning: S1's ``POST /api/voice/clone`` and the caller's cloned voices at
``/api/v1/voices/custom``.

The gateway checks and converts the samples (``clone_samples``), so a request that cannot
succeed is refused before anything leaves it, then hands them to a worker of the ``clone``
queue group through the job protocol; the worker stores the voice and has its provider
clone it. Lists and details are read from the database; a user sees only their own voices.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile

from parley_common.contracts.jobs import (
    CLONE_CREATE,
    CLONE_DELETE,
    CLONE_SAMPLE_FORMATS,
    CloneJobParams,
    CloneProvider,
    CustomVoiceRef,
)
from parley_common.contracts.rest import (
    CustomVoicesView,
    CustomVoiceView,
    ErrorBody,
    S1CloneResponse,
    S1CustomVoice,
)
from parley_common.jobs import JobTimeouts, request_job
from parley_gateway.auth import CurrentUser, acting_user
from parley_gateway.clone_samples import CloneLimits, Upload, check_uploads, prepare_samples
from parley_gateway.custom_voices import CustomVoiceStore
from parley_gateway.limits.dependency import rate_limited
from parley_gateway.routes.client_gone import unless_client_leaves
from parley_gateway.routes.deps import GatewayDep

router = APIRouter(tags=["voice cloning"])

#: The owner of voices cloned through a gateway without authentication (as sessions' user).
ANONYMOUS_OWNER = "anonymous"
# Cloning uploads and waits for the provider: longer than a session's assignment.
_CLONE_TIMEOUTS_S = 300.0


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


_CLONE_ERRORS: dict[int | str, dict[str, Any]] = {
    413: _error("A sample, or all of them, over the size limit (audio_too_large)"),
    415: _error(
        "No usable sample, each not audio (audio_unsupported) or labelled as another format"
        " (audio_mislabelled)"
    ),
    422: _error(
        "No sample (no_samples), too many (too_many_samples), none usable (sample_too_short,"
        " sample_silent, audio_too_long, audio_unreadable, no_usable_samples: the details name"
        " each file's reason), bad fields, or a provider this deployment cannot use"
    ),
    503: _error("No clone worker is running"),
}
_VOICE_ERRORS: dict[int | str, dict[str, Any]] = {
    404: _error("No such voice, or another user's (voice_not_found)"),
}


def _timeouts(gateway: GatewayDep) -> JobTimeouts:
    return JobTimeouts(accept_s=gateway.settings.assign_timeout_s, total_s=_CLONE_TIMEOUTS_S)


@router.post(
    "/api/voice/clone",
    tags=["S1 compatibility"],
    response_model=S1CloneResponse,
    response_model_by_alias=True,
    responses=_CLONE_ERRORS,
    dependencies=[Depends(rate_limited("clone"))],
)
async def s1_clone(
    http: Request,
    gateway: GatewayDep,
    principal: CurrentUser,
    name: Annotated[str, Form(min_length=1, max_length=100, pattern=r"\S")],
    samples: Annotated[
        list[UploadFile] | None,
        File(
            description="Audio recordings of one voice, 5 s to 3 min each (10+ of 1-2 min"
            " recommended): WAV, WebM/Opus, Ogg/Opus, MP3, FLAC or M4A/AAC"
        ),
    ] = None,
    description: Annotated[str | None, Form(max_length=1000)] = None,
    provider: Annotated[CloneProvider, Form()] = CloneProvider.ELEVENLABS,
) -> S1CloneResponse:
    """Clone a voice from ``samples`` (S1's form): ``{"success": true, "voice"}``, its
    status ``processing`` while the provider clones it, else ``ready`` or ``failed`` (with
    the provider's reason). The samples are checked first (see the 4xx answers) and are not
    kept. Poll ``GET /api/v1/voices/custom/{id}`` until it is ready."""
    files = samples or []
    limits = CloneLimits.from_env()
    check_uploads([f.size or 0 for f in files], limits)  # before any file is read
    uploads = [Upload(f.filename, f.content_type, await f.read()) for f in files]
    prepared = await prepare_samples(uploads, CLONE_SAMPLE_FORMATS[provider], limits)
    params = CloneJobParams(
        owner=acting_user(principal, None) or ANONYMOUS_OWNER,
        name=name.strip(),
        description=(description or "").strip() or None,
        provider=provider,
        samples=prepared.samples,
        uploaded=prepared.uploaded,
        total_duration_s=prepared.total_duration_s,
        warnings=prepared.warnings,
    )
    job = request_job(
        gateway.bus,
        "clone",
        CLONE_CREATE,
        params,
        CustomVoiceRef,
        upload=prepared.data,
        timeouts=_timeouts(gateway),
    )
    ref, _ = await unless_client_leaves(http, job)
    voice = await CustomVoiceStore(gateway.pool).get(ref.voice_id, principal)
    return S1CloneResponse(voice=S1CustomVoice.model_validate(voice.model_dump()))


@router.get("/api/v1/voices/custom", response_model=CustomVoicesView)
async def list_custom_voices(gateway: GatewayDep, principal: CurrentUser) -> CustomVoicesView:
    """The caller's cloned voices, newest first, whatever their status."""
    return CustomVoicesView(voices=await CustomVoiceStore(gateway.pool).visible(principal))


@router.get(
    "/api/v1/voices/custom/{voice_id}", response_model=CustomVoiceView, responses=_VOICE_ERRORS
)
async def get_custom_voice(
    gateway: GatewayDep, principal: CurrentUser, voice_id: str
) -> CustomVoiceView:
    """One of the caller's cloned voices: its status, and why it failed when it did."""
    return await CustomVoiceStore(gateway.pool).get(voice_id, principal)


@router.delete(
    "/api/v1/voices/custom/{voice_id}",
    status_code=204,
    response_class=Response,
    responses={
        **_VOICE_ERRORS,
        409: _error("The voice is still being cloned (voice_processing)"),
        503: _error("No clone worker is running"),
    },
)
async def delete_custom_voice(
    gateway: GatewayDep, principal: CurrentUser, voice_id: str
) -> Response:
    """Delete one of the caller's voices, at its provider too. Sessions already speaking
    with it may fail their next sentence."""
    voice = await CustomVoiceStore(gateway.pool).get(voice_id, principal)
    ref = CustomVoiceRef(voice_id=voice.id, owner=voice.user_id)
    await request_job(
        gateway.bus, "clone", CLONE_DELETE, ref, CustomVoiceRef, timeouts=_timeouts(gateway)
    )
    return Response(status_code=204)
