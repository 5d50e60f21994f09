"""NATS subject names. Every subject Parley uses is built here and nowhere else."""

from __future__ import annotations

from enum import StrEnum

PREFIX = "parley"
EVENTS_STREAM = "PARLEY_EVENTS"
EVENTS_SUBJECTS = f"{PREFIX}.events.>"


class SessionChannel(StrEnum):
    """The per-session subjects of the architecture brief."""

    AUDIO_IN = "audio.in"
    SPEECH = "speech"
    TRANSCRIPT = "transcript"
    REPLY = "reply"
    AUDIO_OUT = "audio.out"
    INTERRUPT = "interrupt"
    CONTROL = "control"
    # Per-turn latency and service errors, for the client and for dashboards.
    STATUS = "status"


def session(session_id: str, channel: SessionChannel) -> str:
    """Subject of one channel of one session: ``parley.session.{sid}.{channel}``."""
    return f"{PREFIX}.session.{session_id}.{channel.value}"


def session_wildcard(channel: SessionChannel) -> str:
    """Subject matching one channel of every session."""
    return f"{PREFIX}.session.*.{channel.value}"


def assign(service: str) -> str:
    """Request subject a service's queue group answers to take a session."""
    return f"{PREFIX}.svc.{service}.assign"


def assign_to(service: str, worker_id: str) -> str:
    """Request subject on which one worker alone takes a session: the gateway's choice of
    the least-loaded worker (``assign`` lets the queue group pick one)."""
    return f"{PREFIX}.svc.{service}.worker.{_token(worker_id)}.assign"


def ping(service: str, worker_id: str) -> str:
    """Request subject one worker answers with its heartbeat: is a silent worker gone?"""
    return f"{PREFIX}.svc.{service}.worker.{_token(worker_id)}.ping"


def _token(name: str) -> str:
    # A worker id holds a host name, whose dots would split one subject token into several.
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)


def query(service: str, name: str) -> str:
    """Request subject of a stateless query answered by a service's queue group."""
    return f"{PREFIX}.svc.{service}.{name}"


def job(service: str, kind: str) -> str:
    """Request subject on which a service's queue group takes one-shot jobs of ``kind``
    (``parley_common.jobs``: a REST transcription, a REST synthesis)."""
    return f"{PREFIX}.svc.{service}.job.{kind}"


def heartbeat(service: str) -> str:
    """Subject on which a service's workers announce they are alive and what they hold."""
    return f"{PREFIX}.svc.{service}.heartbeat"


def connection(session_id: str) -> str:
    """Subject on which a gateway process claims a session's one client connection: the
    process holding an older one closes it (``parley_gateway.realtime.claims``)."""
    return f"{PREFIX}.gateway.connection.{session_id}"


def event(name: str) -> str:
    """JetStream subject of a durable event (``parley.events.<name>``)."""
    return f"{PREFIX}.events.{name}"


def every_session() -> str:
    """Subject matching every channel of every session (a recorder that must see one
    session's messages in the order they were sent)."""
    return f"{PREFIX}.session.>"


def parse_session(subject: str) -> tuple[str, SessionChannel] | None:
    """The session id and channel of a per-session subject; None for any other subject."""
    parts = subject.split(".", 3)
    if len(parts) != 4 or parts[0] != PREFIX or parts[1] != "session":
        return None
    try:
        return parts[2], SessionChannel(parts[3])
    except ValueError:
        return None
