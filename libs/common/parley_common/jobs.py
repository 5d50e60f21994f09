"""One-shot jobs on a service's queue group, with inputs and outputs larger than a NATS
message (a REST transcription of ten minutes is 19 MB of PCM; NATS takes 1 MB by default).

The protocol, on core NATS:

1. The requester subscribes to a fresh inbox, then sends a ``JobOffer`` (the job's params
   and that inbox) as a request to ``subjects.job(service, kind)`` in the service's queue
   group. The one worker that gets it subscribes to a private job subject and answers
   ``JobAccepted`` with it. No worker: ``ServiceUnavailableError`` at once (no responders)
   or after ``JobTimeouts.accept_s``.
2. The requester sends its input as raw chunks of at most ``CHUNK_BYTES`` to the job
   subject, numbered from 0 in the ``Parley-Seq`` header, then an ``end`` message whose
   sequence number is the chunk count (so a lost chunk is noticed, never transcribed).
3. The worker sends output chunks the same way to the inbox, an ``alive`` message every
   ``HEARTBEAT_S`` while it works, and last a ``JobOutcome``: the result as JSON, or a
   ``JobFailure`` that the requester raises again as the same ``ParleyError`` class.

Every wait is bounded: a side silent for ``idle_s`` (a worker that died, an upload that
stopped) is a ``ParleyTimeoutError``, and so is a job longer than ``total_s``. A requester
that gives up (its HTTP client left) sends ``cancel`` to the job subject, and the worker
stops the job at once instead of spending a minute of CPU on an answer nobody reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from pydantic import BaseModel, ValidationError

from parley_common.bus import Bus, MessageMeta, Received
from parley_common.contracts import subjects
from parley_common.contracts.jobs import JobAccepted, JobFailure, JobOffer, JobOutcome
from parley_common.errors import (
    BadInputError,
    ParleyError,
    ParleyTimeoutError,
    ProviderRateLimitedError,
    ServiceUnavailableError,
    safe_message,
)

__all__ = [
    "CHUNK_BYTES",
    "HEARTBEAT_S",
    "ChunkSink",
    "JobHandler",
    "JobTimeouts",
    "failure_of",
    "raise_failure",
    "request_job",
    "serve_jobs",
]

log = logging.getLogger(__name__)

CHUNK_BYTES = 256 * 1024  # a quarter of NATS' default max_payload: headers always fit
HEARTBEAT_S = 1.0
# Header saying what a job message is; its sequence number is the usual Parley-Seq.
JOB_MESSAGE = "Parley-Job"
_CHUNK, _END, _ALIVE, _CANCEL = "chunk", "end", "alive", "cancel"
_IDLE_S = 10.0

P = TypeVar("P", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)

#: Where a job handler sends its output, in order; chunked for the bus by the protocol.
ChunkSink = Callable[[bytes], Awaitable[None]]
#: A worker's job: its params and its input chunks in, output through the sink, result out.
JobHandler = Callable[[P, AsyncIterator[bytes], ChunkSink], Awaitable[BaseModel]]


@dataclass(frozen=True, slots=True)
class JobTimeouts:
    """How long each step of a job may take, in seconds."""

    accept_s: float = 2.0  # for a worker of the queue group to take the job
    idle_s: float = _IDLE_S  # the other side's longest silence mid-job (heartbeats every 1 s)
    total_s: float = 600.0  # the whole job, from offer to outcome


def _meta(kind: str, seq: int) -> MessageMeta:
    return MessageMeta(session_id="", seq=seq, extra={JOB_MESSAGE: kind})


async def _send_chunked(bus: Bus, subject: str, data: bytes, first_seq: int) -> int:
    """Publish ``data`` as numbered chunks from ``first_seq``; returns the next number."""
    seq = first_seq
    for start in range(0, len(data), CHUNK_BYTES):
        await bus.publish(subject, data[start : start + CHUNK_BYTES], _meta(_CHUNK, seq))
        seq += 1
    return seq


def _kind_and_seq(msg: Msg) -> tuple[str, int]:
    meta = MessageMeta.from_headers(msg.headers)
    return meta.extra.get(JOB_MESSAGE, ""), meta.seq


# Requester side.


async def request_job(
    bus: Bus,
    service: str,
    kind: str,
    params: BaseModel,
    result_type: type[R],
    *,
    upload: bytes = b"",
    timeouts: JobTimeouts | None = None,
) -> tuple[R, bytes]:
    """Run one job on a worker of ``service``'s queue group: send ``params`` and ``upload``,
    return the validated result and the output chunks joined.

    Raises ``ServiceUnavailableError`` when no worker takes it, ``ParleyTimeoutError`` when
    a step overruns, and the worker's own error class when the job failed there.
    """
    timeouts = timeouts or JobTimeouts()
    inbox = bus.nc.new_inbox()
    results = await bus.nc.subscribe(inbox)
    accepted: JobAccepted | None = None
    try:
        async with asyncio.timeout(timeouts.total_s):
            accepted = await _offer(bus, service, kind, params, inbox, timeouts.accept_s)
            end = await _send_chunked(bus, accepted.job_subject, upload, 0)
            await bus.publish(accepted.job_subject, b"", _meta(_END, end))
            outcome, output = await _collect(results, service, timeouts.idle_s)
    except asyncio.CancelledError:
        if accepted is not None:
            await asyncio.shield(_cancel(bus, accepted.job_subject))
        raise
    except TimeoutError as exc:
        # Only the overall deadline gets here: every inner wait raises its own error.
        raise ParleyTimeoutError(
            f"the {service} job took longer than {timeouts.total_s:g} s"
        ) from exc
    finally:
        with contextlib.suppress(Exception):
            await results.unsubscribe()
    if outcome.error is not None:
        raise raise_failure(outcome.error)
    if outcome.result is None:
        raise ServiceUnavailableError(f"the {service} worker ended the job without a result")
    return result_type.model_validate_json(outcome.result), output


async def _cancel(bus: Bus, job_subject: str) -> None:
    with contextlib.suppress(NatsError):  # the bus is gone: the worker's idle timer ends it
        await bus.publish(job_subject, b"", _meta(_CANCEL, 0))


async def _offer(
    bus: Bus, service: str, kind: str, params: BaseModel, inbox: str, timeout_s: float
) -> JobAccepted:
    offer = JobOffer(reply_to=inbox, params=params.model_dump_json())
    try:
        reply = await bus.request(
            subjects.job(service, kind), offer, MessageMeta(session_id=""), timeout=timeout_s
        )
    except NoRespondersError as exc:
        raise ServiceUnavailableError(f"no {service} worker is running") from exc
    except NatsTimeoutError as exc:
        raise ServiceUnavailableError(f"no {service} worker took the job in time") from exc
    return JobAccepted.model_validate_json(reply.data)


async def _collect(results: Subscription, service: str, idle_s: float) -> tuple[JobOutcome, bytes]:
    chunks: list[bytes] = []
    while True:
        try:
            msg = await results.next_msg(timeout=idle_s)
        except NatsTimeoutError as exc:
            raise ParleyTimeoutError(
                f"the {service} worker stopped answering for {idle_s:g} s"
            ) from exc
        kind, seq = _kind_and_seq(msg)
        if kind == _ALIVE:
            continue
        if seq != len(chunks):
            raise ServiceUnavailableError(f"part of the {service} worker's answer was lost")
        if kind == _END:
            return JobOutcome.model_validate_json(msg.data), b"".join(chunks)
        chunks.append(msg.data)


# Errors across the bus.


def failure_of(exc: BaseException, fallback: str) -> JobFailure:
    """What the requester may learn of a worker-side error: its class, code and safe
    message (``fallback`` for anything outside the error tree)."""
    error = exc if isinstance(exc, ParleyError) else ParleyError(safe_message(exc, fallback))
    lineage = [c.__name__ for c in type(error).__mro__ if issubclass(c, ParleyError)]
    return JobFailure(
        error_classes=lineage,
        code=error.code,
        message=error.message,
        provider=error.provider,
        details=error.details,
        retry_after_s=getattr(error, "retry_after_s", None),
    )


def _error_classes() -> dict[str, type[ParleyError]]:
    found: dict[str, type[ParleyError]] = {}
    pending: list[type[ParleyError]] = [ParleyError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.__name__, cls)
        pending.extend(cls.__subclasses__())
    return found


def raise_failure(failure: JobFailure) -> ParleyError:
    """The ``ParleyError`` to raise for a worker's ``JobFailure``: the same class, or its
    nearest ancestor known in this process, with the same code and message."""
    known = _error_classes()
    cls = next((known[n] for n in failure.error_classes if n in known), ParleyError)
    kwargs: dict[str, Any] = {
        "code": failure.code,
        "provider": failure.provider,
        "details": failure.details,
    }
    if issubclass(cls, ProviderRateLimitedError):
        kwargs["retry_after_s"] = failure.retry_after_s
    return cls(failure.message, **kwargs)


# Worker side.


class _JobServer:
    """Takes jobs of one kind from a queue group; one task per running job, held here."""

    def __init__(
        self,
        bus: Bus,
        service: str,
        worker_id: str,
        params_type: type[P],
        handler: JobHandler[P],
        idle_s: float,
    ) -> None:
        self._bus = bus
        self._service = service
        self._worker_id = worker_id
        self._parse: Callable[[str], BaseModel] = params_type.model_validate_json
        self._handler: JobHandler[Any] = handler
        self._idle_s = idle_s
        self._jobs: set[asyncio.Task[None]] = set()

    async def on_offer(self, msg: Received) -> None:
        offer = JobOffer.model_validate_json(msg.data)
        job_subject = self._bus.nc.new_inbox()
        # Subscribed before answering: not one chunk can arrive before the subscription.
        uploads = await self._bus.nc.subscribe(job_subject)
        task = asyncio.create_task(self._run(offer, uploads))
        self._jobs.add(task)
        task.add_done_callback(self._jobs.discard)
        accepted = JobAccepted(job_subject=job_subject, worker_id=self._worker_id)
        await self._bus.respond(msg, accepted, MessageMeta(session_id=""))

    async def _run(self, offer: JobOffer, uploads: Subscription) -> None:
        next_seq = 0

        async def send(data: bytes) -> None:
            nonlocal next_seq
            next_seq = await _send_chunked(self._bus, offer.reply_to, data, next_seq)

        chunks: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        work = asyncio.create_task(self._work(offer, chunks, send))
        reader = asyncio.create_task(self._read(uploads, chunks, work))
        beat = asyncio.create_task(self._heartbeat(offer.reply_to))
        try:
            outcome = await work
        except asyncio.CancelledError:
            if not work.cancelled():
                raise  # this worker is stopping: its requester sees the idle timeout
            log.info("job cancelled by its requester", extra={"service": self._service})
            return
        finally:
            beat.cancel()
            reader.cancel()
            with contextlib.suppress(Exception):
                await uploads.unsubscribe()
        try:
            await self._bus.publish(offer.reply_to, outcome, _meta(_END, next_seq))
        except NatsError:
            log.warning("job outcome not sent: the bus is gone", extra={"service": self._service})

    async def _work(
        self,
        offer: JobOffer,
        chunks: asyncio.Queue[bytes | BaseException | None],
        send: ChunkSink,
    ) -> JobOutcome:
        try:
            try:
                params = self._parse(offer.params)
            except ValidationError as exc:
                raise BadInputError(f"the {self._service} job's parameters are invalid") from exc
            result = await self._handler(params, self._upload(chunks), send)
            return JobOutcome(result=result.model_dump_json())
        except Exception as exc:
            if not isinstance(exc, ParleyError):
                log.exception("job failed", extra={"service": self._service})
            return JobOutcome(error=failure_of(exc, f"the {self._service} job failed"))

    async def _read(
        self,
        uploads: Subscription,
        chunks: asyncio.Queue[bytes | BaseException | None],
        work: asyncio.Task[JobOutcome],
    ) -> None:
        """Feeds the upload to the handler in order, then keeps listening for a cancel."""
        seq = 0
        uploading = True
        while True:
            try:
                msg = await uploads.next_msg(timeout=self._idle_s if uploading else None)
            except NatsTimeoutError:
                chunks.put_nowait(
                    ParleyTimeoutError(f"the upload stopped arriving for {self._idle_s:g} s")
                )
                uploading = False
                continue
            kind, got = _kind_and_seq(msg)
            if kind == _CANCEL:
                work.cancel()
                return
            if not uploading:
                continue
            if got != seq:
                chunks.put_nowait(ServiceUnavailableError("part of the upload was lost on the way"))
                uploading = False
            elif kind == _END:
                chunks.put_nowait(None)
                uploading = False
            else:
                seq += 1
                chunks.put_nowait(msg.data)

    async def _upload(
        self, chunks: asyncio.Queue[bytes | BaseException | None]
    ) -> AsyncIterator[bytes]:
        while True:
            item = await chunks.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    async def _heartbeat(self, inbox: str) -> None:
        # The requester's proof that a long job (a minute of Whisper) is still alive.
        with contextlib.suppress(NatsError):  # the connection is gone: so is the job
            while True:
                await asyncio.sleep(HEARTBEAT_S)
                await self._bus.publish(inbox, b"", _meta(_ALIVE, 0))


async def serve_jobs(
    bus: Bus,
    service: str,
    kind: str,
    params_type: type[P],
    handler: JobHandler[P],
    *,
    worker_id: str = "",
    idle_s: float = _IDLE_S,
) -> None:
    """Take jobs of ``kind`` in ``service``'s queue group for as long as ``bus`` is open;
    each runs ``handler`` in a task of its own, so one slow job never holds up the next."""
    server = _JobServer(bus, service, worker_id, params_type, handler, idle_s)
    await bus.subscribe(subjects.job(service, kind), server.on_offer, queue=service)
