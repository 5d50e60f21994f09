"""Answers "which voices does provider X offer?" for the gateway's voices API."""

from __future__ import annotations

from parley_common.bus import Bus, Received
from parley_common.contracts import subjects
from parley_common.contracts.bus import VoiceEntry, VoicesReply, VoicesRequest
from parley_common.contracts.session import TtsProvider as TtsName
from parley_common.errors import ParleyError
from parley_tts.providers.registry import get_provider

SUBJECT = subjects.query("tts", "voices")


async def serve_voices(bus: Bus) -> None:
    """Answer voice queries in the ``tts`` queue group (stateless: any worker answers)."""

    async def answer(msg: Received) -> None:
        request = VoicesRequest.model_validate_json(msg.data)
        try:
            provider = get_provider(TtsName(request.provider))
            voices = tuple(
                VoiceEntry(
                    id=v.id,
                    name=v.name,
                    language=v.language,
                    gender=v.gender,
                    description=v.description,
                )
                for v in await provider.voices()
            )
            reply = VoicesReply(provider=request.provider, voices=voices)
        except ValueError:
            reply = VoicesReply(provider=request.provider, error="unknown TTS provider")
        except ParleyError as exc:
            reply = VoicesReply(provider=request.provider, error=exc.message)
        await bus.respond(msg, reply, msg.meta)

    await bus.subscribe(SUBJECT, answer, queue="tts")
