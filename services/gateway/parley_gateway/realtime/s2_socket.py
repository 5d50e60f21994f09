"""S2's voice WebSocket: ``WS /api/v1/ws/voice/{chatbot_id}?token=…``.

Each connection is a conversation with the chatbot, that is a Parley session: a new one, or
the session ``?conversation_id=`` (resumed if it had ended). The protocol is what S2's
``VoiceChatClient`` speaks: ``ping`` / ``audio_start`` / ``audio_stop`` / ``text_message``,
binary messages that are whole recordings, and S2's flat events back with every answer as
one playable file in the chatbot's ``audio_format``. With ``?audio=pcm`` the socket speaks
the native protocol instead (PCM16 frames both ways, barge-in), as
``/api/v1/sessions/{id}/ws`` does. The session outlives the socket: an unused one idles out.
"""

from __future__ import annotations

import logging
from typing import Literal, get_args

from fastapi import APIRouter, WebSocket

from parley_common.errors import ParleyError
from parley_gateway.limits.dependency import client_ip
from parley_gateway.realtime.bridge import SessionBridge
from parley_gateway.realtime.connections import (
    CLOSE_POLICY,
    accept_caller,
    close_for_error,
    connected,
)
from parley_gateway.realtime.playout import FRAME_MS
from parley_gateway.routes.deps import get_gateway
from parley_gateway.sessions.conversation import chatbot_voice, open_conversation
from parley_gateway.sessions.turn_result import AnswerFormat

log = logging.getLogger(__name__)

router = APIRouter()

AudioMode = Literal["file", "pcm"]
_AUDIO_MODES: tuple[AudioMode, ...] = get_args(AudioMode)


@router.websocket("/api/v1/ws/voice/{chatbot_id}")
async def s2_voice_socket(websocket: WebSocket, chatbot_id: str) -> None:
    """A voice conversation with ``chatbot_id`` in S2's protocol (``?audio=pcm``: the native
    one). Refusals close with a code and a reason: 4401/4403 for the token, 4404 for another
    user's or an unknown conversation or chatbot, 4429 over a rate limit."""
    gateway = get_gateway(websocket)
    principal = await accept_caller(websocket)
    if principal is None:
        return
    mode = websocket.query_params.get("audio", "file")
    if mode not in _AUDIO_MODES:
        await websocket.close(CLOSE_POLICY, f"audio must be one of: {', '.join(_AUDIO_MODES)}")
        return
    conversation_id = websocket.query_params.get("conversation_id") or None
    try:
        await gateway.limiter.check(
            "session_start", user_id=principal.user_id, ip=client_ip(websocket)
        )
        voice = await chatbot_voice(gateway, principal, chatbot_id)
        record = await open_conversation(gateway, principal, chatbot_id, conversation_id)
    except ParleyError as exc:
        log.info("S2 socket refused", extra={"code": exc.code})
        await close_for_error(websocket, exc)
        return
    answers = None if mode == "pcm" else AnswerFormat(voice.audio_format, voice.tts_pitch)
    async with connected(gateway, record.id, websocket):
        # S2's chatbots play frames as they come, with no jitter buffer of Parley's making:
        # they keep the 40 ms frames the native clients had before.
        await SessionBridge(gateway, record, websocket, answers, chunk_ms=FRAME_MS).run()
