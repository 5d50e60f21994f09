"""One-shot transcriptions (S2's ``POST /api/v1/voice/stt``) taken from the ``stt`` queue
group: the upload arrives as PCM16 LE mono 16 kHz chunks, the final transcript goes back."""

from __future__ import annotations

from collections.abc import AsyncIterator

from parley_common.bus import Bus
from parley_common.contracts.jobs import STT_TRANSCRIBE, SttJobParams, SttJobResult
from parley_common.jobs import ChunkSink, serve_jobs
from parley_stt.providers.base import BYTES_PER_SECOND
from parley_stt.providers.registry import get_provider


async def transcribe(
    params: SttJobParams, upload: AsyncIterator[bytes], _: ChunkSink
) -> SttJobResult:
    """Feed the whole upload to one stream of the chosen provider and return its final
    transcript. The stream is always closed, so a cloud connection never outlives the job."""
    stream = await get_provider(params.provider).open(params.language, model=params.model)
    size = 0
    try:
        async for pcm in upload:
            size += len(pcm)
            await stream.feed(pcm)
        final = await stream.finish()
    finally:
        await stream.aclose()
    return SttJobResult(
        text=final.text,
        confidence=final.confidence,
        language=final.language or params.language,
        duration=size / BYTES_PER_SECOND,
        words=list(final.words),
    )


async def serve_transcriptions(bus: Bus, worker_id: str = "") -> None:
    """Take transcription jobs in the ``stt`` queue group while ``bus`` is open."""
    await serve_jobs(bus, "stt", STT_TRANSCRIBE, SttJobParams, transcribe, worker_id=worker_id)
