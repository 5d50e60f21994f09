"""Speaking rate and pitch applied to PCM, for TTS providers that cannot do them themselves.

``speed`` (0.5-2.0, S2's ``tts_speed``) changes the tempo and keeps the pitch: 2.0 speaks in
half the time. ``pitch`` (-2.0-2.0, S2's ``tts_pitch``) is in **semitones** and keeps the
duration: +2.0 raises every frequency by 2 ** (2/12), about 12 %. S2's guide gives only the
range and the neutral 0.0, not a unit; semitones is the unit of the TTS APIs that take a
signed pitch (Google's ``pitch`` is -20..20 semitones), and on that scale +-2 is a clearly
audible but still natural change, whereas +-2 octaves would make speech unintelligible.

Both run through FFmpeg's own filters in PyAV's filter graph (no extra dependency): pitch is
``asetrate`` (play faster, so higher) then ``aresample`` back to the rate, and one ``atempo``
(WSOLA time stretching) sets the final tempo to ``speed``.
"""

from __future__ import annotations

import asyncio
from fractions import Fraction

import av
import av.filter

from parley_common.audio._pcm import frame_pcm, pcm_frames
from parley_common.contracts.audio import PITCH_RANGE, SPEED_RANGE
from parley_common.errors import BadInputError

__all__ = [
    "AUDIO_EFFECT_OUT_OF_RANGE",
    "PITCH_RANGE",
    "SPEED_RANGE",
    "apply_effects",
    "apply_effects_async",
]

AUDIO_EFFECT_OUT_OF_RANGE = "audio_effect_out_of_range"
_ATEMPO_MIN = 0.5


def apply_effects(pcm: bytes, sample_rate: int, *, speed: float = 1.0, pitch: float = 0.0) -> bytes:
    """PCM16 LE mono at ``sample_rate`` Hz played at ``speed`` and shifted by ``pitch``
    semitones, at the same rate. Neutral values return the audio unchanged. Blocking."""
    _check("speed", speed, SPEED_RANGE)
    _check("pitch", pitch, PITCH_RANGE)
    if speed == 1.0 and pitch == 0.0:
        return pcm
    ratio = 2.0 ** (pitch / 12.0)
    graph = av.filter.Graph()
    nodes = [
        graph.add_abuffer(
            format="s16",
            layout="mono",
            sample_rate=sample_rate,
            time_base=Fraction(1, sample_rate),
        )
    ]
    if pitch != 0.0:
        nodes.append(graph.add("asetrate", str(round(sample_rate * ratio))))
        nodes.append(graph.add("aresample", str(sample_rate)))
    # asetrate alone would also speed the audio up by ``ratio``: atempo takes that back.
    nodes.extend(graph.add("atempo", f"{step:.6f}") for step in _tempo_steps(speed / ratio))
    # The sink hands back what went in: s16 mono at sample_rate.
    nodes.append(
        graph.add("aformat", f"sample_fmts=s16:channel_layouts=mono:sample_rates={sample_rate}")
    )
    nodes.append(graph.add("abuffersink"))
    graph.link_nodes(*nodes).configure()
    out: list[bytes] = []
    for frame in pcm_frames(pcm, sample_rate):
        graph.push(frame)
        _pull(graph, out)
    graph.push(None)
    _pull(graph, out)
    return b"".join(out)


async def apply_effects_async(
    pcm: bytes, sample_rate: int, *, speed: float = 1.0, pitch: float = 0.0
) -> bytes:
    """``apply_effects`` in a worker thread, so the event loop keeps serving."""
    return await asyncio.to_thread(apply_effects, pcm, sample_rate, speed=speed, pitch=pitch)


def _tempo_steps(tempo: float) -> list[float]:
    """``tempo`` as factors atempo accepts (0.5-100): slowing 0.5x while raising the pitch
    asks for about 0.45, done as two steps."""
    steps: list[float] = []
    while tempo < _ATEMPO_MIN:
        steps.append(_ATEMPO_MIN)
        tempo /= _ATEMPO_MIN
    return [*steps, tempo]


def _check(name: str, value: float, bounds: tuple[float, float]) -> None:
    if not bounds[0] <= value <= bounds[1]:
        raise BadInputError(
            f"{name} must be between {bounds[0]} and {bounds[1]}, got {value}.",
            code=AUDIO_EFFECT_OUT_OF_RANGE,
        )


def _pull(graph: av.filter.Graph, out: list[bytes]) -> None:
    """Collect every frame the graph has ready (it says so by raising when it has none)."""
    while True:
        try:
            frame = graph.pull()
        except (BlockingIOError, av.EOFError):
            return
        assert isinstance(frame, av.AudioFrame)
        out.append(frame_pcm(frame))
