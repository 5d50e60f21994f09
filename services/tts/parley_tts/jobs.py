"""One-shot syntheses (S2's ``POST /api/v1/voice/tts``) taken from the ``tts`` queue group:
the whole text is spoken by the chosen provider and its PCM16 goes back in chunks."""

from __future__ import annotations

from collections.abc import AsyncIterator

from parley_common.bus import Bus
from parley_common.contracts.jobs import TTS_SYNTHESIZE, TtsJobParams, TtsJobResult
from parley_common.errors import BadInputError
from parley_common.jobs import ChunkSink, serve_jobs
from parley_tts.providers.registry import get_provider

# Output is sent in pieces of about this much audio, not per provider chunk (20 ms each).
_SEND_BYTES = 64 * 1024


async def synthesize(params: TtsJobParams, _: AsyncIterator[bytes], out: ChunkSink) -> TtsJobResult:
    """Speak ``params.text`` at ``params.speed`` (every provider takes speed: the cloud APIs
    as a parameter, Piper as its length scale, the scripted double by dividing the length)
    and send the PCM16 at the provider's own rate; the gateway resamples and encodes."""
    provider = get_provider(params.provider)
    try:
        audio = provider.synthesize(
            params.text, params.voice, model=params.model, speed=params.speed
        )
    except ValueError as exc:  # an adapter's refusal of its arguments (an unknown voice)
        raise BadInputError(str(exc), code="tts_bad_request", provider=provider.name) from exc
    pending = bytearray()
    try:
        async for pcm in audio:
            pending += pcm
            if len(pending) >= _SEND_BYTES:
                await out(bytes(pending))
                pending.clear()
    finally:
        await audio.aclose()
    await out(bytes(pending))
    return TtsJobResult(sample_rate=provider.sample_rate)


async def serve_syntheses(bus: Bus, worker_id: str = "") -> None:
    """Take synthesis jobs in the ``tts`` queue group while ``bus`` is open."""
    await serve_jobs(bus, "tts", TTS_SYNTHESIZE, TtsJobParams, synthesize, worker_id=worker_id)
