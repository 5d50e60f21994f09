"""The clone service's jobs (``parley_common.jobs`` on the ``clone`` queue group) and the
clones it runs in the background.

``create`` takes samples the gateway already checked and converted, stores the voice as
``processing``, starts the provider's clone and answers once the voice is ``ready`` or
``failed`` or after ``CLONE_READY_WAIT_S``, whichever comes first: the clone itself goes on
in a task this service owns, and its end is written to the row. ``delete`` removes a voice at
its provider, then its row. ``resolve`` gives a TTS worker the provider's id of a ready voice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from parley_clone.providers.base import Sample, VoiceCloner
from parley_clone.settings import CloneSettings
from parley_clone.store import VoiceRow, VoiceRows
from parley_common.audio import mime_type
from parley_common.bus import Bus
from parley_common.contracts.jobs import (
    CLONE_CREATE,
    CLONE_DELETE,
    CLONE_RESOLVE,
    CLONE_SAMPLE_FORMATS,
    PROVIDER_VOICE_PREFIX,
    CloneJobParams,
    CloneProvider,
    CustomVoiceRef,
    CustomVoiceStatus,
    ResolvedVoice,
)
from parley_common.errors import BadInputError, ConflictError, NotFoundError, ParleyError
from parley_common.jobs import ChunkSink, JobHandler, serve_jobs

__all__ = ["INTERRUPTED", "Cloner"]

log = logging.getLogger(__name__)

INTERRUPTED = "cloning was interrupted (its worker stopped): upload the samples again"
_FAILED = "cloning failed: try again"


def _not_found(voice_id: str) -> NotFoundError:
    return NotFoundError(f"no custom voice {voice_id}", code="voice_not_found")


class Cloner:
    """Runs clone jobs; ``run`` owns every clone in progress and the sweep of interrupted
    ones, and must be running for ``create`` to start a clone."""

    def __init__(
        self,
        rows: VoiceRows,
        settings: CloneSettings,
        cloners: Callable[[CloneProvider], VoiceCloner],
    ) -> None:
        self._rows = rows
        self._settings = settings
        self._cloners = cloners
        self._group: asyncio.TaskGroup | None = None
        self._clones: set[asyncio.Task[None]] = set()

    async def serve(self, bus: Bus, worker_id: str = "") -> None:
        """Take the three kinds of clone jobs in the ``clone`` queue group."""
        jobs: list[tuple[str, type[Any], JobHandler[Any]]] = [
            (CLONE_CREATE, CloneJobParams, self.create),
            (CLONE_DELETE, CustomVoiceRef, self.delete),
            (CLONE_RESOLVE, CustomVoiceRef, self.resolve),
        ]
        for kind, params, handler in jobs:
            await serve_jobs(bus, "clone", kind, params, handler, worker_id=worker_id)
        await bus.flush()  # taking jobs from now on, not once the server gets to it

    async def run(self, stopping: asyncio.Event) -> None:
        """Own the clones until ``stopping``; then let them finish for up to ``drain_s``,
        and mark the rest failed as interrupted."""
        async with asyncio.TaskGroup() as group:
            self._group = group
            sweeper = group.create_task(self._sweep())
            try:
                await stopping.wait()
                if self._clones:
                    await asyncio.wait(set(self._clones), timeout=self._settings.drain_s)
            finally:
                self._group = None
                sweeper.cancel()
                for task in self._clones:
                    task.cancel()

    async def create(
        self, params: CloneJobParams, upload: AsyncIterator[bytes], _: ChunkSink
    ) -> CustomVoiceRef:
        """Store the voice and start its clone; answers within ``ready_wait_s``."""
        cloner = self._cloners(params.provider)  # unavailable: refused before anything
        samples = _samples(params, b"".join([chunk async for chunk in upload]))
        group = self._group
        if group is None:
            raise ParleyError("the clone worker is stopping: try again")
        voice_id = str(uuid.uuid4())
        await self._rows.insert(voice_id, params)
        if self._settings.keep_samples:
            await self._rows.keep_samples(voice_id, samples, [s.duration_s for s in params.samples])
        done = asyncio.Event()
        self._start(group, self._clone(voice_id, cloner, params.description, samples, done))
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._settings.ready_wait_s):
                await done.wait()
        return CustomVoiceRef(voice_id=voice_id, owner=params.owner)

    async def delete(
        self, ref: CustomVoiceRef, _: AsyncIterator[bytes], __: ChunkSink
    ) -> CustomVoiceRef:
        """Delete the voice at its provider, then its row. One still being cloned is a
        ConflictError (its clone would outlive the row)."""
        row = await self._visible(ref)
        if row.status == CustomVoiceStatus.PROCESSING:
            raise ConflictError(
                "the voice is still being cloned: delete it once it is ready or failed",
                code="voice_processing",
            )
        if row.provider_voice_id is not None:
            await self._cloners(row.provider).delete(row.provider_voice_id)
        await self._rows.delete(row.id)
        return CustomVoiceRef(voice_id=row.id, owner=row.user_id)

    async def resolve(
        self, ref: CustomVoiceRef, _: AsyncIterator[bytes], __: ChunkSink
    ) -> ResolvedVoice:
        """The provider's id of a ready voice."""
        row = await self._visible(ref)
        if row.status != CustomVoiceStatus.READY or row.provider_voice_id is None:
            raise BadInputError(
                f"custom voice {row.id} is {row.status}, not ready", code="voice_not_ready"
            )
        return ResolvedVoice(
            voice_id=row.id, provider=row.provider, provider_voice_id=row.provider_voice_id
        )

    async def _visible(self, ref: CustomVoiceRef) -> VoiceRow:
        row = await self._rows.get(ref.voice_id)
        if row is None or (ref.owner is not None and row.user_id != ref.owner):
            raise _not_found(ref.voice_id)  # another user's voice is no voice at all
        return row

    def _start(self, group: asyncio.TaskGroup, clone: Coroutine[Any, Any, None]) -> None:
        task = group.create_task(clone)
        self._clones.add(task)
        task.add_done_callback(self._clones.discard)

    async def _clone(
        self,
        voice_id: str,
        cloner: VoiceCloner,
        description: str | None,
        samples: list[Sample],
        done: asyncio.Event,
    ) -> None:
        """One clone at the provider, its outcome written to the row; never raises (it runs
        in the task group every clone shares)."""
        try:
            provider_voice_id = await cloner.clone(
                PROVIDER_VOICE_PREFIX + voice_id, description, samples
            )
            if not await self._rows.finish(voice_id, provider_voice_id):
                await cloner.delete(provider_voice_id)  # its row is gone or failed
        except asyncio.CancelledError:
            await self._record_failure(voice_id, INTERRUPTED)
            raise
        except ParleyError as exc:
            await self._record_failure(voice_id, exc.message)
        except Exception:
            log.exception("clone failed", extra={"voice_id": voice_id})
            await self._record_failure(voice_id, _FAILED)
        finally:
            done.set()

    async def _record_failure(self, voice_id: str, reason: str) -> None:
        try:
            await asyncio.shield(self._rows.fail(voice_id, reason))
        except Exception:
            # The sweep marks it failed later.
            log.exception("a failed clone could not be recorded", extra={"voice_id": voice_id})

    async def _sweep(self) -> None:
        """Mark failed the voices left ``processing`` by a worker that stopped mid-clone."""
        while True:
            try:
                swept = await self._rows.fail_stale(self._settings.stale_after_s, INTERRUPTED)
            except Exception:
                log.exception("sweeping interrupted clones failed")
            else:
                if swept:
                    log.info("interrupted clones marked failed", extra={"count": swept})
            await asyncio.sleep(self._settings.sweep_every_s)


def _samples(params: CloneJobParams, data: bytes) -> list[Sample]:
    """The upload cut into the samples its params list, in the provider's format."""
    if sum(s.size for s in params.samples) != len(data):
        raise BadInputError("the clone upload does not match its list of samples")
    mime = mime_type(CLONE_SAMPLE_FORMATS[params.provider].encoding)
    samples = []
    start = 0
    for sample in params.samples:
        samples.append(Sample(sample.filename, data[start : start + sample.size], mime))
        start += sample.size
    return samples
