"""The one-shot job protocol on a real nats-server: chunking, errors, no worker, a dead one."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator

import pytest
from nats.errors import NoRespondersError
from pydantic import BaseModel

from parley_common.bus import Bus, MessageMeta, Received
from parley_common.contracts import subjects
from parley_common.contracts.jobs import JobAccepted, JobOffer, JobOutcome
from parley_common.errors import (
    ParleyError,
    ParleyTimeoutError,
    ProviderRateLimitedError,
    ServiceUnavailableError,
)
from parley_common.jobs import CHUNK_BYTES, ChunkSink, JobTimeouts, request_job, serve_jobs

Upload = AsyncIterator[bytes]


class EchoParams(BaseModel):
    times: int = 1


class EchoResult(BaseModel):
    chunks: int
    sizes: list[int]


def _pattern(size: int) -> bytes:
    # Every 4-byte word holds its own index: any reordering or loss changes the bytes.
    return b"".join(i.to_bytes(4, "big") for i in range(size // 4))


async def _echo(params: EchoParams, upload: Upload, out: ChunkSink) -> EchoResult:
    sizes: list[int] = []
    received = bytearray()
    async for chunk in upload:
        sizes.append(len(chunk))
        received += chunk
    for _ in range(params.times):
        await out(bytes(received))
    return EchoResult(chunks=len(sizes), sizes=sizes)


@pytest.fixture
async def worker(nats_url: str) -> AsyncGenerator[Bus, None]:
    worker_bus = await Bus.connect(nats_url, name="job-worker")
    yield worker_bus
    await worker_bus.close()


async def test_a_large_upload_and_answer_arrive_whole_and_in_order(bus: Bus, worker: Bus) -> None:
    await serve_jobs(worker, "jobtest", "echo", EchoParams, _echo)
    await worker.nc.flush()
    upload = _pattern(3 * 1024 * 1024 + 1000)  # 3 MB: three times NATS' default max_payload
    result, output = await request_job(
        bus, "jobtest", "echo", EchoParams(times=2), EchoResult, upload=upload
    )
    assert output == upload + upload
    assert result.chunks == -(-len(upload) // CHUNK_BYTES)
    assert max(result.sizes) == CHUNK_BYTES
    assert sum(result.sizes) == len(upload)


async def test_a_job_without_input_or_output_still_ends(bus: Bus, worker: Bus) -> None:
    await serve_jobs(worker, "jobtest", "empty", EchoParams, _echo)
    await worker.nc.flush()
    result, output = await request_job(bus, "jobtest", "empty", EchoParams(), EchoResult)
    assert (result.chunks, output) == (0, b"")


async def test_a_worker_error_is_raised_again_as_the_same_class(bus: Bus, worker: Bus) -> None:
    async def limited(params: EchoParams, upload: Upload, out: ChunkSink) -> EchoResult:
        raise ProviderRateLimitedError(
            "slow down", retry_after_s=3.0, provider="groq", code="groq_busy"
        )

    await serve_jobs(worker, "jobtest", "limited", EchoParams, limited)
    await worker.nc.flush()
    with pytest.raises(ProviderRateLimitedError) as caught:
        await request_job(bus, "jobtest", "limited", EchoParams(), EchoResult, upload=b"x")
    error = caught.value
    assert (error.message, error.code, error.provider, error.retry_after_s) == (
        "slow down",
        "groq_busy",
        "groq",
        3.0,
    )


async def test_an_unexpected_worker_exception_never_reveals_its_text(bus: Bus, worker: Bus) -> None:
    async def broken(params: EchoParams, upload: Upload, out: ChunkSink) -> EchoResult:
        raise RuntimeError("secret sk-123 in a vendor traceback")

    await serve_jobs(worker, "jobtest", "broken", EchoParams, broken)
    await worker.nc.flush()
    with pytest.raises(ParleyError) as caught:
        await request_job(bus, "jobtest", "broken", EchoParams(), EchoResult)
    assert type(caught.value) is ParleyError
    assert caught.value.code == "internal_error"
    assert "sk-123" not in caught.value.message


async def test_no_worker_is_a_fast_service_unavailable(bus: Bus) -> None:
    started = time.monotonic()
    with pytest.raises(ServiceUnavailableError, match="no nobody worker"):
        await request_job(bus, "nobody", "echo", EchoParams(), EchoResult, upload=b"abc")
    assert time.monotonic() - started < 1.0


async def test_a_worker_that_dies_mid_job_is_a_timeout(bus: Bus, nats_url: str) -> None:
    dying = await Bus.connect(nats_url, name="dying-worker")
    working = asyncio.Event()
    release = asyncio.Event()

    async def hangs(params: EchoParams, upload: Upload, out: ChunkSink) -> EchoResult:
        await out(b"first part")
        working.set()
        await release.wait()
        return EchoResult(chunks=0, sizes=[])

    await serve_jobs(dying, "jobtest", "dies", EchoParams, hangs)
    await dying.nc.flush()
    timeouts = JobTimeouts(accept_s=2.0, idle_s=1.5, total_s=30.0)
    job = asyncio.create_task(
        request_job(bus, "jobtest", "dies", EchoParams(), EchoResult, timeouts=timeouts)
    )
    await asyncio.wait_for(working.wait(), 5)
    # Alive for 3 s first: heartbeats keep a slow job going past idle_s.
    await asyncio.sleep(3.0)
    assert not job.done()
    await dying.nc.close()
    died = time.monotonic()
    with pytest.raises(ParleyTimeoutError, match="stopped answering"):
        await job
    assert time.monotonic() - died < 3.0
    release.set()


async def test_a_job_over_its_total_deadline_is_a_timeout(bus: Bus, worker: Bus) -> None:
    async def slow(params: EchoParams, upload: Upload, out: ChunkSink) -> EchoResult:
        await asyncio.sleep(5)
        return EchoResult(chunks=0, sizes=[])

    await serve_jobs(worker, "jobtest", "slow", EchoParams, slow)
    await worker.nc.flush()
    await bus.nc.flush()
    timeouts = JobTimeouts(total_s=1.0)
    with pytest.raises(ParleyTimeoutError, match="longer than 1 s"):
        await request_job(bus, "jobtest", "slow", EchoParams(), EchoResult, timeouts=timeouts)


async def _offer(bus: Bus, subject: str, offer: JobOffer) -> Received:
    """The worker's answer to ``offer``. CI once saw the server answer "no responders" right
    after the worker had subscribed and flushed; the offer is made again for a second."""
    deadline = time.monotonic() + 1.0
    while True:
        try:
            return await bus.request(subject, offer, MessageMeta(session_id=""))
        except NoRespondersError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_an_upload_that_stops_midway_ends_the_job_on_the_worker(
    bus: Bus, worker: Bus
) -> None:
    await serve_jobs(worker, "jobtest", "stalled", EchoParams, _echo, idle_s=1.0)
    await worker.nc.flush()
    inbox = bus.nc.new_inbox()
    results = await bus.nc.subscribe(inbox)
    offer = JobOffer(reply_to=inbox, params=EchoParams().model_dump_json())
    reply = await _offer(bus, subjects.job("jobtest", "stalled"), offer)
    accepted = JobAccepted.model_validate_json(reply.data)
    # One chunk, then the requester vanishes without the end marker.
    await bus.publish(accepted.job_subject, b"abcd", MessageMeta(session_id="", seq=0))
    started = time.monotonic()
    while True:
        msg = await results.next_msg(timeout=5)
        if msg.data:  # heartbeats are empty; the outcome is not
            break
    outcome = JobOutcome.model_validate_json(msg.data)
    assert outcome.error is not None
    assert outcome.error.code == "timeout"
    assert outcome.error.error_classes[0] == "ParleyTimeoutError"
    assert time.monotonic() - started < 3.0


async def test_a_requester_that_gives_up_stops_the_job_on_the_worker(bus: Bus, worker: Bus) -> None:
    started, stopped = asyncio.Event(), asyncio.Event()

    async def slow(params: EchoParams, upload: Upload, out: ChunkSink) -> EchoResult:
        async for _ in upload:
            pass
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            stopped.set()
            raise
        return EchoResult(chunks=0, sizes=[])

    await serve_jobs(worker, "jobtest", "slow", EchoParams, slow)
    await worker.nc.flush()
    request = asyncio.create_task(
        request_job(bus, "jobtest", "slow", EchoParams(), EchoResult, upload=b"x" * 1000)
    )
    await asyncio.wait_for(started.wait(), 5)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    await asyncio.wait_for(stopped.wait(), 2)
    # The same worker takes the next job.
    await serve_jobs(worker, "jobtest", "echo", EchoParams, _echo)
    await worker.nc.flush()
    result, output = await request_job(
        bus, "jobtest", "echo", EchoParams(), EchoResult, upload=b"ab"
    )
    assert output == b"ab"
    assert result.chunks == 1
