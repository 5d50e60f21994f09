"""The speculative transcript of a pause: the utterance's final text, published as soon as
it is known while the user is still silent, so that the dialogue can start the answer (and
the TTS its first audio) before the turn ends. The gateway holds what they make until the
turn commits; this side says when it will not (the user spoke again)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from opentelemetry.trace import Span

from parley_common.bus import Bus, MessageMeta
from parley_common.contracts import subjects
from parley_common.contracts.bus import SpeculationCancelled, Transcript
from parley_common.contracts.subjects import SessionChannel
from parley_common.observability import tracing

# The speculative transcript of a pause and its turn's root span: the turn's trace starts
# with the speculation, so the answer made on it belongs to the turn if it commits.
Offered = tuple[Transcript, Span]


class SpeculativeTranscript:
    """At most one speculative transcript per session: the one of the pause in progress."""

    def __init__(
        self, bus: Bus, session_id: str, meta: Callable[[], MessageMeta], enabled: bool
    ) -> None:
        self.bus = bus
        self.sid = session_id
        self.enabled = enabled  # the session's ``speculative_answer``
        self._meta = meta
        self._offered: Offered | None = None

    async def publish(self, transcript: Transcript) -> None:
        """Offer ``transcript`` (a final's text, before the turn has ended) to the dialogue."""
        speculative = transcript.model_copy(update={"is_final": False, "speculative": True})
        root = tracing.start_turn("stt", self.sid)
        # Marked before the publish: a resume that cancels it mid-way still says so.
        self._offered = (speculative, root)
        meta = replace(self._meta(), traceparent=tracing.traceparent_of(root))
        await self.bus.publish(
            subjects.session(self.sid, SessionChannel.TRANSCRIPT), speculative, meta
        )

    async def cancel(self) -> None:
        """The user went on speaking (or the turn yielded no final): anything started on the
        speculative transcript is to be dropped."""
        if self._offered is not None:
            _, root = self._offered
            self._offered = None
            root.set_attribute("parley.cancelled", True)
            root.end()
            await self.withdraw()

    async def withdraw(self) -> None:
        """Tell the dialogue that no turn commits the speculative transcript it was given."""
        await self.bus.publish(
            subjects.session(self.sid, SessionChannel.INTERRUPT),
            SpeculationCancelled(),
            self._meta(),
        )

    def take(self) -> Offered | None:
        """The turn ended: the speculative transcript of its last pause and its root span,
        if any (the caller ends the span; the final follows, and commits the answer when the
        words are the same)."""
        offered, self._offered = self._offered, None
        return offered
