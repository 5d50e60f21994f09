"""A client on a speakerphone, for the echo-cancellation tests and benchmarks: it plays the
assistant's audio in real time, and its microphone hears that audio back (delayed,
attenuated, with a little noise) along with whatever the user says."""

from __future__ import annotations

import asyncio
import heapq
import time
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from bench.audio import FRAME_MS, INPUT_RATE
from bench.call import Call
from parley_common.audio.resampling import StreamResampler
from parley_gateway.realtime.echo import AEC_RATE, ServerEcho

FRAME_SAMPLES = INPUT_RATE * FRAME_MS // 1000
# A client's player drops what it buffered on these events.
FLUSHING_EVENTS = ("interrupted", "audio_pause")
# The gateway's side in ``simulate``: 40 ms frames at 24 kHz, sent up to 250 ms ahead of
# playback (Playout's defaults); the microphone's frames reach it 30 ms after capture.
OUTPUT_RATE = 24_000
SEND_FRAME_MS = 40
LEAD_S = 0.25
UPLINK_S = 0.03
Samples = npt.NDArray[np.float64]


def pcm_array(pcm: bytes) -> Samples:
    """PCM16 LE as float samples."""
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def pcm_bytes(samples: Samples) -> bytes:
    """Float samples as PCM16 LE, clipped."""
    return np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()


def level_db(samples: Samples) -> float:
    """RMS level in dB (of PCM16 units; 0 dB = an RMS of 1)."""
    return float(10 * np.log10(np.mean(samples**2) + 1e-9))


@dataclass
class EchoPath:
    """The room between a speaker and a microphone: what played ``delay_ms`` ago comes
    back ``attenuation_db`` quieter, over noise of RMS ``noise_rms``."""

    delay_ms: float
    attenuation_db: float
    noise_rms: float = 30.0
    seed: int = 0
    _line: Samples = field(init=False)
    _rng: np.random.Generator = field(init=False)

    def __post_init__(self) -> None:
        self._line = np.zeros(round(self.delay_ms * INPUT_RATE / 1000))
        self._rng = np.random.default_rng(self.seed)

    def mic(self, played: Samples, near: Samples) -> Samples:
        """The microphone over the samples in which ``played`` came out of the speaker while
        the user said ``near`` (the same length)."""
        line = np.concatenate((self._line, played))
        echo, self._line = line[: len(played)], line[len(played) :]
        gain = 10 ** (-self.attenuation_db / 20)
        return near + gain * echo + self._rng.normal(0.0, self.noise_rms, len(played))


class Speakerphone:
    """Drives ``call`` like a client on a speaker, until ``stop``: every 20 ms it plays the
    next 20 ms of the assistant's audio received (flushed on ``interrupted`` or
    ``audio_pause``, as a player does) and sends what its microphone heard through ``path``."""

    def __init__(self, call: Call, path: EchoPath, output_rate: int) -> None:
        self.call = call
        self.path = path
        self._resampler = StreamResampler(output_rate, INPUT_RATE)
        self._playback: Samples = np.zeros(0)
        self._speech: Samples = np.zeros(0)
        self._cursor = 0  # call.log entries already taken
        self._task: asyncio.Task[None] | None = None
        self.played_samples = 0  # assistant audio that came out of the speaker

    def start(self) -> None:
        """Start the microphone."""
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop the microphone."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def say(self, pcm: bytes) -> None:
        """The user says ``pcm`` (PCM16 16 kHz) from the next frame on."""
        self._speech = np.concatenate((self._speech, pcm_array(pcm)))

    @property
    def speaking(self) -> bool:
        """Whether the user still has speech to say."""
        return len(self._speech) > 0

    def _take_received(self, until: float) -> None:
        """What arrived by ``until`` (``perf_counter``): a late loop catching up plays each
        frame's audio as a real device would have, not what came after it."""
        log = self.call.log
        while self._cursor < len(log) and log[self._cursor].at <= until:
            record = log[self._cursor]
            self._cursor += 1
            if record.audio is not None:
                chunk = pcm_array(self._resampler.process(record.audio))
                self._playback = np.concatenate((self._playback, chunk))
            elif record.event is not None and record.event.get("type") in FLUSHING_EVENTS:
                self._playback = np.zeros(0)

    def _next(self, buffer: Samples) -> tuple[Samples, Samples]:
        frame = np.zeros(FRAME_SAMPLES)
        n = min(FRAME_SAMPLES, len(buffer))
        frame[:n] = buffer[:n]
        return frame, buffer[n:]

    async def _run(self) -> None:
        started = time.perf_counter()
        i = 0
        while True:
            self._take_received(started + i * FRAME_MS / 1000)
            self.played_samples += min(FRAME_SAMPLES, len(self._playback))
            played, self._playback = self._next(self._playback)
            near, self._speech = self._next(self._speech)
            await self.call.ws.send(pcm_bytes(self.path.mic(played, near)))
            i += 1
            delay = started + i * FRAME_MS / 1000 - time.perf_counter()
            await asyncio.sleep(max(0.0, delay))


Event = tuple[float, int, bytes]  # (seconds, 0 = sent to the client / 1 = from it, PCM)


def call_events(
    path: EchoPath, answer: Samples, near: Samples, play_at: float, total_s: float
) -> tuple[Samples, list[Event]]:
    """A call on simulated time: the gateway sends ``answer`` (PCM16 16 kHz, resampled to
    ``OUTPUT_RATE``) to play from ``play_at`` s, the client plays it as sent and its
    microphone (``path``, plus the user's ``near`` from 0 s) goes back up. Returns the
    microphone's audio and the gateway's frames both ways, in time order."""
    far_out = StreamResampler(INPUT_RATE, OUTPUT_RATE)
    far = far_out.process(pcm_bytes(answer)) + far_out.flush()
    step = OUTPUT_RATE * 2 * SEND_FRAME_MS // 1000
    events: list[Event] = []
    for j, i in enumerate(range(0, len(far), step)):
        sent = max(play_at, play_at + j * SEND_FRAME_MS / 1000 - LEAD_S)
        events.append((sent, 0, far[i : i + step]))
    played = np.zeros(round(total_s * INPUT_RATE))
    start = round(play_at * INPUT_RATE)
    played[start : start + len(answer)] = answer[: len(played) - start]
    speech = np.zeros(len(played))
    speech[: len(near)] = near[: len(played)]
    mic = np.concatenate(
        [
            path.mic(played[i : i + FRAME_SAMPLES], speech[i : i + FRAME_SAMPLES])
            for i in range(0, len(played), FRAME_SAMPLES)
        ]
    )
    for i in range(0, len(mic), FRAME_SAMPLES):
        arrives = (i + FRAME_SAMPLES) / INPUT_RATE + UPLINK_S
        events.append((arrives, 1, pcm_bytes(mic[i : i + FRAME_SAMPLES])))
    heapq.heapify(events)
    return pcm_array(pcm_bytes(mic)), [heapq.heappop(events) for _ in range(len(events))]


async def replay(echo: ServerEcho, events: list[Event]) -> Samples:
    """``events`` through ``echo`` as the gateway would see them: its output."""
    out = bytearray()
    origin = 1000.0  # perf_counter-like times: only differences matter
    for at, kind, data in events:
        if kind == 0:
            echo.far.sent(data, origin + at)
        else:
            out += await echo.cancel(data, origin + at)
    return pcm_array(bytes(out))


async def simulate(
    path: EchoPath, answer: Samples, near: Samples, play_at: float, total_s: float
) -> tuple[Samples, Samples, ServerEcho]:
    """``call_events`` through a new ``ServerEcho``: the microphone's audio, the
    canceller's output (both from 0 s, as long as the output's whole blocks) and the
    canceller."""
    mic, events = call_events(path, answer, near, play_at, total_s)
    echo = ServerEcho(OUTPUT_RATE)
    processed = await replay(echo, events)
    assert len(mic) - len(processed) < AEC_RATE // 100  # all but a last partial block
    return mic[: len(processed)], processed, echo
