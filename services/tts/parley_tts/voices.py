"""Answers "which voices does provider X offer?" for the gateway's voices API, and checks the
voice a session names.

Voices Parley cloned for its users live in the provider's account too (named
``PROVIDER_VOICE_PREFIX`` + their id): they are never listed nor taken by their provider id
here. A session names one by its Parley id (a UUID), which the clone service resolves to the
provider's id once the gateway has checked that the voice is the caller's.
"""

from __future__ import annotations

from parley_common.bus import Bus, Received
from parley_common.contracts import subjects
from parley_common.contracts.bus import SessionAssign, VoiceEntry, VoicesReply, VoicesRequest
from parley_common.contracts.jobs import (
    CLONE_RESOLVE,
    PROVIDER_VOICE_PREFIX,
    CustomVoiceRef,
    ResolvedVoice,
    custom_voice_uuid,
)
from parley_common.contracts.session import TtsProvider as TtsName
from parley_common.errors import ParleyError, ProviderUnavailableError
from parley_common.jobs import JobTimeouts, request_job
from parley_tts.providers.base import TtsProvider, VoiceInfo
from parley_tts.providers.registry import get_provider

SUBJECT = subjects.query("tts", "voices")
# A resolution is a database read on the clone worker; the session's assignment waits on it.
_RESOLVE_TIMEOUTS = JobTimeouts(accept_s=1.0, total_s=1.5)


def offered(voices: list[VoiceInfo]) -> list[VoiceInfo]:
    """A provider's voices that any session may name: not the ones cloned for users."""
    return [v for v in voices if not v.name.startswith(PROVIDER_VOICE_PREFIX)]


async def session_voice(bus: Bus, provider: TtsProvider, assign: SessionAssign) -> SessionAssign:
    """The assignment with a voice ``provider`` takes: a cloned voice's Parley id becomes
    its provider's id; any other voice must be one the provider offers. Raises
    ProviderUnavailableError (or the clone service's error) otherwise."""
    voice = assign.config.voice
    if voice is None:
        return assign
    if custom_voice_uuid(voice) is None:
        if voice not in {v.id for v in offered(await provider.voices())}:
            raise ProviderUnavailableError(
                f"voice '{voice}' is not offered by the {provider.name} TTS"
            )
        return assign
    ref = CustomVoiceRef(voice_id=voice)  # the gateway checked it is the caller's
    resolved, _ = await request_job(
        bus, "clone", CLONE_RESOLVE, ref, ResolvedVoice, timeouts=_RESOLVE_TIMEOUTS
    )
    if resolved.provider.value != provider.name:
        raise ProviderUnavailableError(
            f"custom voice {voice} is a {resolved.provider.value} voice, not {provider.name}'s"
        )
    config = assign.config.model_copy(update={"voice": resolved.provider_voice_id})
    return assign.model_copy(update={"config": config})


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
                for v in offered(await provider.voices())
            )
            reply = VoicesReply(provider=request.provider, voices=voices)
        except ValueError:
            reply = VoicesReply(provider=request.provider, error="unknown TTS provider")
        except ParleyError as exc:
            reply = VoicesReply(provider=request.provider, error=exc.message)
        await bus.respond(msg, reply, msg.meta)

    await bus.subscribe(SUBJECT, answer, queue="tts")
