"""What tests of voice cloning share (the service's own, the gateway's, the browser's): sample
recordings whose pitch is known, so that the emulators' clones speak at it, and a clone
worker running in the test's process."""

from __future__ import annotations

import asyncio
import contextlib
import math
from array import array
from collections.abc import AsyncIterator, Callable
from typing import Literal

import asyncpg

from parley_clone.cloner import Cloner
from parley_clone.providers.base import VoiceCloner
from parley_clone.providers.registry import get_cloner
from parley_clone.settings import CloneSettings
from parley_clone.store import VoiceRows
from parley_common.audio import encode_pcm
from parley_common.bus import Bus
from parley_common.contracts.jobs import CloneProvider

__all__ = ["clone_worker", "voice_sample"]

_AMPLITUDE = 9000


def voice_sample(
    pitch_hz: float,
    seconds: float,
    encoding: Literal["wav", "mp3", "flac", "opus"] = "wav",
    rate: int = 24_000,
) -> bytes:
    """A recording of a voice humming at ``pitch_hz`` in syllables (its loudness rises and
    falls three times a second), as a complete ``encoding`` file."""
    samples = array(
        "h",
        (
            round(
                _AMPLITUDE
                * (0.65 + 0.35 * math.sin(2 * math.pi * 3 * i / rate))
                * math.sin(2 * math.pi * pitch_hz * i / rate)
            )
            for i in range(int(seconds * rate))
        ),
    )
    return encode_pcm(samples.tobytes(), rate, encoding, rate).data


@contextlib.asynccontextmanager
async def clone_worker(
    nats_url: str,
    pool: asyncpg.Pool,
    settings: CloneSettings | None = None,
    cloners: Callable[[CloneProvider], VoiceCloner] = get_cloner,
) -> AsyncIterator[Cloner]:
    """A clone worker on the bus at ``nats_url`` and the database of ``pool`` (its
    production code, adapters from the environment) until the block ends."""
    bus = await Bus.connect(nats_url, name="clone-worker")
    cloner = Cloner(VoiceRows(pool), settings or CloneSettings(drain_s=0), cloners)
    stopping = asyncio.Event()
    running = asyncio.create_task(cloner.run(stopping))
    await cloner.serve(bus)
    try:
        yield cloner
    finally:
        stopping.set()
        await running
        await bus.close()
