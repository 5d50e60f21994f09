"""S2's one-shot voice routes: ``POST /api/v1/voice/tts`` and ``POST /api/v1/voice/stt``.

The gateway runs no model: it decodes an upload to PCM16 16 kHz and hands it to one worker
of the ``stt`` queue group, or asks one worker of ``tts`` for the text's PCM, through the
chunked job protocol (``parley_common.jobs``); then it applies the pitch (no provider has
one) and encodes the file the client asked for.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import Response
from pydantic import AfterValidator

from parley_common.audio import (
    DecodeLimits,
    Encoding,
    apply_effects_async,
    decode_upload_async,
    encode_pcm_async,
    mime_type,
)
from parley_common.contracts.jobs import (
    STT_TRANSCRIBE,
    TTS_SYNTHESIZE,
    SttJobParams,
    SttJobResult,
    TtsJobParams,
    TtsJobResult,
)
from parley_common.contracts.rest import ErrorBody
from parley_common.contracts.session import SttProvider
from parley_common.contracts.voice_api import TtsRequest
from parley_common.jobs import JobTimeouts, request_job
from parley_common.languages import LANGUAGE_TAG_PATTERN, SUPPORTED_LANGUAGES, check_language
from parley_gateway.auth import current_user
from parley_gateway.limits.dependency import rate_limited
from parley_gateway.routes.client_gone import unless_client_leaves
from parley_gateway.routes.deps import GatewayDep

router = APIRouter(tags=["S2 compatibility"], dependencies=[Depends(current_user)])

SAMPLE_RATE_HEADER = "X-Audio-Sample-Rate"
_ENCODINGS: tuple[Encoding, ...] = ("mp3", "wav", "opus", "flac", "pcm")
_BINARY = {"schema": {"type": "string", "format": "binary"}}


def _timeouts(gateway: GatewayDep) -> JobTimeouts:
    return JobTimeouts(accept_s=gateway.settings.assign_timeout_s)


@router.post(
    "/api/v1/voice/tts",
    dependencies=[Depends(rate_limited("tts"))],
    response_class=Response,
    responses={
        200: {
            "description": "The whole audio file in the requested encoding; its rate is also "
            f"in {SAMPLE_RATE_HEADER} (the only place it is for raw pcm, PCM16 LE mono)",
            "content": {mime_type(e): _BINARY for e in _ENCODINGS},
            "headers": {SAMPLE_RATE_HEADER: {"schema": {"type": "integer"}}},
        },
    },
)
async def s2_tts(request: TtsRequest, gateway: GatewayDep, http: Request) -> Response:
    """Speak ``text``: ``speed`` is passed to the provider (every provider has it), ``pitch``
    is applied to its audio here; the file is encoded at ``sample_rate``. A client that
    leaves stops the synthesis."""
    params = TtsJobParams(
        text=request.text,
        provider=request.provider,
        voice=request.voice,
        model=request.model,
        speed=request.speed,
    )
    result, pcm = await unless_client_leaves(
        http,
        request_job(
            gateway.bus, "tts", TTS_SYNTHESIZE, params, TtsJobResult, timeouts=_timeouts(gateway)
        ),
    )
    pcm = await apply_effects_async(pcm, result.sample_rate, pitch=request.pitch)
    encoded = await encode_pcm_async(pcm, result.sample_rate, request.encoding, request.sample_rate)
    return Response(
        content=encoded.data,
        media_type=encoded.mime_type,
        headers={SAMPLE_RATE_HEADER: str(encoded.sample_rate)},
    )


_STT_ERRORS: dict[int | str, dict[str, Any]] = {
    413: {"model": ErrorBody, "description": "Upload over its size limit (audio_too_large)"},
    415: {
        "model": ErrorBody,
        "description": "Not audio Parley reads (audio_unsupported), or named or typed as "
        "another format than it holds (audio_mislabelled)",
    },
    422: {
        "model": ErrorBody,
        "description": "Empty, damaged or too long audio (audio_empty, audio_unreadable, "
        "audio_too_long), bad fields, or an unavailable provider",
    },
}


@router.post(
    "/api/v1/voice/stt",
    response_model=SttJobResult,
    responses=_STT_ERRORS,
    dependencies=[Depends(rate_limited("stt"))],
)
async def s2_stt(
    gateway: GatewayDep,
    http: Request,
    audio_file: Annotated[
        UploadFile, File(description="WAV, WebM/Opus, Ogg/Opus, MP3, FLAC or M4A/AAC")
    ],
    language: Annotated[
        str | None,
        Form(
            max_length=16,
            json_schema_extra={"pattern": LANGUAGE_TAG_PATTERN},
            description=f"one of {', '.join(SUPPORTED_LANGUAGES)} (e.g. en, es-MX); absent: detect",
        ),
        AfterValidator(check_language),
    ] = None,
    prompt: Annotated[str | None, Form()] = None,
    temperature: Annotated[float | None, Form(ge=0.0, le=1.0)] = None,
    provider: Annotated[SttProvider, Form()] = SttProvider.LOCAL,
    model: Annotated[str | None, Form()] = None,
) -> SttJobResult:
    """Transcribe an uploaded recording (its container is read from its bytes, never from
    its name). ``prompt`` and ``temperature`` are accepted as S2 sends them, but no Parley
    STT provider takes them, so they change nothing."""
    del prompt, temperature  # accepted for S2's clients; see the docstring
    decoded = await decode_upload_async(
        await audio_file.read(),
        DecodeLimits.from_env(),
        filename=audio_file.filename,
        content_type=audio_file.content_type,
    )
    params = SttJobParams(provider=provider, model=model or None, language=language or None)
    result, _ = await unless_client_leaves(
        http,
        request_job(
            gateway.bus,
            "stt",
            STT_TRANSCRIBE,
            params,
            SttJobResult,
            upload=decoded.pcm,
            timeouts=_timeouts(gateway),
        ),
    )
    return result
