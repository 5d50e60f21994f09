"""S2's ``POST /api/v1/voice/chat``: one spoken turn of a conversation, answered at once.

A conversation is a Parley session (``conversation_id`` is its id): the recording is fed
into it as one push-to-talk turn, so the session's own STT, dialogue and TTS workers answer,
with the conversation's memory, exactly as they answer a WebSocket; the gateway collects
that turn from the session's subjects (``TurnCollector``) and returns it whole.
"""

from __future__ import annotations

import base64
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from pydantic import ValidationError

from parley_common.contracts.rest import ErrorBody
from parley_common.contracts.session import NO_NUL
from parley_common.contracts.voice_api import ChatTimings, ChatVoiceConfig, VoiceChatResponse
from parley_common.errors import BadInputError, ParleyTimeoutError
from parley_common.settings import positive_int_env
from parley_gateway.auth import CurrentUser
from parley_gateway.limits.dependency import rate_limited
from parley_gateway.realtime.audio_clock import AudioClock
from parley_gateway.realtime.audio_in import AudioInPublisher, decode_utterance
from parley_gateway.routes.client_gone import unless_client_leaves
from parley_gateway.routes.deps import Gateway, GatewayDep
from parley_gateway.sessions.conversation import chatbot_voice, open_conversation
from parley_gateway.sessions.store import SessionRecord
from parley_gateway.sessions.turn_result import AnswerFormat, TurnCollector, TurnResult

router = APIRouter(tags=["S2 compatibility"])

# How long the answer may go without any of it arriving (a long answer takes as long as the
# TTS needs to speak it, so the bound is on silence, not on the whole turn).
CHAT_TIMEOUT_ENV = "GATEWAY_CHAT_TIMEOUT_S"
DEFAULT_CHAT_TIMEOUT_S = 30
_MAX_VOICE_CONFIG_CHARS = 20_000


_CHAT_ERRORS: dict[int | str, dict[str, Any]] = {
    404: {
        "model": ErrorBody,
        "description": "Another user's or unknown conversation (conversation_not_found) or "
        "chatbot (chatbot_not_found)",
    },
    409: {
        "model": ErrorBody,
        "description": "voice_config changes a session option of a running conversation "
        "(conversation_config_fixed), or a newer message interrupted the turn "
        "(turn_interrupted)",
    },
    413: {"model": ErrorBody, "description": "Upload over its size limit (audio_too_large)"},
    415: {
        "model": ErrorBody,
        "description": "Not audio Parley reads (audio_unsupported), or named or typed as "
        "another format than it holds (audio_mislabelled)",
    },
    422: {
        "model": ErrorBody,
        "description": "voice_config not JSON or not valid (invalid_voice_config); empty, "
        "damaged, silent or over 30 s audio (audio_empty, audio_unreadable, audio_silent, "
        "audio_too_long); bad fields; or an unavailable provider or voice",
    },
    502: {"model": ErrorBody, "description": "A worker failed on the turn (e.g. stt_*, llm_*)"},
    504: {"model": ErrorBody, "description": "No progress of the answer for the timeout"},
}


def parse_voice_config(raw: str | None) -> ChatVoiceConfig:
    """The ``voice_config`` form field (a JSON object), validated; a BadInputError
    (``invalid_voice_config``) says what is wrong."""
    if raw is None or not raw.strip():
        return ChatVoiceConfig()
    try:
        return ChatVoiceConfig.model_validate_json(raw)
    except ValidationError as exc:
        errors = exc.errors()
        if any(e["type"] == "json_invalid" for e in errors):
            message = 'voice_config is not valid JSON: send an object, e.g. {"tts_speed": 1.2}'
        else:
            found = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in errors
            )
            message = f"voice_config is not valid: {found}"
        raise BadInputError(message, code="invalid_voice_config") from exc


def session_options(config: ChatVoiceConfig) -> dict[str, Any]:
    """The session options ``config`` sets (by SessionConfig name): only those given."""
    options = config.session_defaults()
    if "tts_speed" not in config.model_fields_set:
        options.pop("speed")  # the one session option whose default is not None
    return options


@router.post(
    "/api/v1/voice/chat",
    response_model=VoiceChatResponse,
    responses=_CHAT_ERRORS,
    dependencies=[Depends(rate_limited("chat"))],
)
async def s2_voice_chat(
    http: Request,
    gateway: GatewayDep,
    principal: CurrentUser,
    chatbot_id: Annotated[str, Form(min_length=1, max_length=200, pattern=NO_NUL)],
    audio_file: Annotated[
        UploadFile, File(description="WAV, WebM/Opus, Ogg/Opus, MP3, FLAC or M4A/AAC; <= 30 s")
    ],
    conversation_id: Annotated[
        str | None, Form(max_length=200, description="absent: a new conversation")
    ] = None,
    voice_config: Annotated[
        str | None, Form(max_length=_MAX_VOICE_CONFIG_CHARS, description="a JSON object")
    ] = None,
    use_rag: Annotated[
        bool | None,
        Form(description="a new conversation answers from the chatbot's documents"),
    ] = None,
) -> VoiceChatResponse:
    """Answer one recorded utterance in a conversation with ``chatbot_id``: transcript,
    answer text and the answer's audio (base64, ``audio_format``, mp3 unless
    ``voice_config`` says otherwise), with the ``conversation_id`` to continue (an ended
    conversation is resumed, its memory intact). A client that leaves stops the wait."""
    received = time.perf_counter()
    config = parse_voice_config(voice_config)
    options = session_options(config)
    if use_rag is not None:
        options["use_rag"] = use_rag
    pcm = await decode_utterance(
        await audio_file.read(), filename=audio_file.filename, content_type=audio_file.content_type
    )
    decoded = time.perf_counter()
    stored = await chatbot_voice(gateway, principal, chatbot_id)
    record = await open_conversation(gateway, principal, chatbot_id, conversation_id, options)
    pitch = config.tts_pitch if "tts_pitch" in config.model_fields_set else stored.tts_pitch
    turn, fed = await unless_client_leaves(http, _answer(gateway, record, pcm))
    before_encoding = time.perf_counter()
    encoded = await AnswerFormat(config.audio_format, pitch).encode(turn.pcm, turn.sample_rate)
    done = time.perf_counter()
    timings = ChatTimings(
        decode_ms=_ms(received, decoded),
        stt_ms=_ms(fed, turn.transcript_at),
        llm_ms=_ms(turn.transcript_at, turn.reply_at),
        tts_ms=_ms(turn.reply_at, turn.audio_at),
        encode_ms=_ms(before_encoding, done),
        total_ms=_ms(received, done),
        llm_first_token_ms=turn.stages.llm_first_token_ms,
        tts_first_byte_ms=turn.stages.tts_first_byte_ms,
    )
    return VoiceChatResponse(
        conversation_id=record.id,
        chatbot_id=chatbot_id,
        turn_id=turn.turn_id,
        transcript=turn.transcript.text,
        confidence=turn.transcript.confidence,
        language=turn.transcript.language,
        response_text=turn.reply_text,
        audio_data=base64.b64encode(encoded.data).decode(),
        audio_format=encoded.encoding,
        audio_mime_type=encoded.mime_type,
        sample_rate=encoded.sample_rate,
        audio_duration_s=len(turn.pcm) / 2 / turn.sample_rate if turn.sample_rate else 0.0,
        timings=timings,
    )


async def _answer(gateway: Gateway, record: SessionRecord, pcm: bytes) -> tuple[TurnResult, float]:
    """Feed ``pcm`` into the session as one turn; its result, and when it was fed."""
    idle_s = positive_int_env(CHAT_TIMEOUT_ENV, DEFAULT_CHAT_TIMEOUT_S)
    clock = AudioClock(gateway.audio_positions.get(record.id))
    async with TurnCollector(gateway.bus, record.id) as collector:
        await AudioInPublisher(gateway.bus, record.id, clock).recording(pcm)
        fed = time.perf_counter()
        gateway.audio_positions.set(record.id, clock.sample)
        gateway.activity.note(record.id)
        try:
            return await collector.result(idle_s), fed
        except TimeoutError as exc:
            raise ParleyTimeoutError(
                f"the conversation stopped answering: nothing came for {idle_s} s while"
                f" waiting for {collector.waiting_for}",
                code="chat_timeout",
            ) from exc


def _ms(start: float, end: float) -> float:
    return round(max(0.0, end - start) * 1000, 1)
