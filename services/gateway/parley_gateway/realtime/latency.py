"""Per-turn latency at the gateway: the stages workers report merged with the gateway's own
measurements (voice-to-voice, interrupt), sent to the client as ``metrics`` events and
recorded durably, with a bounded memory of recent turns."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from parley_common.bus import MessageMeta
from parley_common.contracts.bus import LatencyStages
from parley_common.contracts.events import LatencyRecorded
from parley_common.contracts.ws import MetricsData, MetricsEvent
from parley_common.observability.metrics import latency_histogram
from parley_common.reporting import DurableReporter

VOICE_TO_VOICE_SECONDS = latency_histogram(
    "parley_voice_to_voice_seconds", "End of user speech to first answer audio sent"
)
INTERRUPT_SECONDS = latency_histogram(
    "parley_interrupt_seconds", "User speech onset to the old turn's audio stopped"
)
# Reports about a turn arrive around its start and end; older turns are forgotten.
RECENT_TURNS = 8

SendMetrics = Callable[[MetricsEvent], Awaitable[None]]


class TurnLatencies:
    """The latency stages of a session's recent turns."""

    def __init__(self, session_id: str, send: SendMetrics, reporter: DurableReporter) -> None:
        self.session_id = session_id
        self.send = send
        self.reporter = reporter
        self._turns: OrderedDict[int, LatencyStages] = OrderedDict()

    @property
    def tracked_turns(self) -> int:
        """Turns whose stages are remembered (at most RECENT_TURNS)."""
        return len(self._turns)

    async def reported(self, turn_id: int, stages: LatencyStages) -> None:
        """A worker's stages (it records them durably itself): tell the client."""
        await self._merge(turn_id, stages)

    async def voice_to_voice(self, turn_id: int, ms: float) -> None:
        """End of the user's speech to the first answer audio sent, measured here."""
        VOICE_TO_VOICE_SECONDS.observe(ms / 1000)
        await self._measured(turn_id, LatencyStages(voice_to_voice_ms=ms))

    async def interrupt(self, turn_id: int, ms: float) -> None:
        """Speech onset to the old turn's audio stopped, measured here."""
        INTERRUPT_SECONDS.observe(ms / 1000)
        await self._measured(turn_id, LatencyStages(interrupt_ms=ms))

    async def _measured(self, turn_id: int, stages: LatencyStages) -> None:
        event = LatencyRecorded(
            session_id=self.session_id, at=datetime.now(UTC), turn_id=turn_id, stages=stages
        )
        meta = MessageMeta(session_id=self.session_id, turn_id=turn_id)
        self.reporter.report("latency.recorded", event, meta)
        await self._merge(turn_id, stages)

    async def _merge(self, turn_id: int, stages: LatencyStages) -> None:
        merged = self._turns.pop(turn_id, LatencyStages()).merged(stages)
        self._turns[turn_id] = merged
        while len(self._turns) > RECENT_TURNS:
            self._turns.popitem(last=False)
        data = MetricsData(turn_id=turn_id, **merged.model_dump())
        await self.send(MetricsEvent(data=data))
