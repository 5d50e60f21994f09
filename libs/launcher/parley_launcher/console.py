"""What a person sees in the terminal: one short line per event, colour only on a terminal.

Output that goes to a file or a pipe stays plain text (no ANSI codes), so that it can be
searched and diffed; ``NO_COLOR`` turns colour off on a terminal too (https://no-color.org).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TextIO

_CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33"}
# Wide enough for "PostgreSQL" and every service name, and for the usual states, so that
# names, states and details line up in columns.
_NAME_WIDTH = 11
_STATE_WIDTH = 9


def wants_colour(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal that should get colour."""
    if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    return stream.isatty()


@dataclass(frozen=True)
class Palette:
    """Paints text with ANSI styles, or leaves it plain."""

    colour: bool

    def paint(self, text: str, *tones: str) -> str:
        """``text`` in the given tones (``bold``, ``dim``, ``red``, ``green``, ``yellow``)."""
        codes = ";".join(_CODES[tone] for tone in tones if tone)
        if not self.colour or not codes or not text:
            return text
        return f"\x1b[{codes}m{text}\x1b[0m"


class Console:
    """Human lines on one stream. ``quiet`` keeps only what must always be printed (the URL):
    with ``--log-format json`` the JSON stream on stderr is the report."""

    def __init__(self, stream: TextIO, *, colour: bool | None = None, quiet: bool = False) -> None:
        self.stream = stream
        self.palette = Palette(wants_colour(stream) if colour is None else colour)
        self.quiet = quiet
        # A terminal shows what is in progress on a last line, which the next line replaces.
        self._pending = ""

    def _write(self, text: str, *, always: bool = False) -> None:
        if self.quiet and not always:
            return
        if self._pending:  # the event ends what was in progress: its line goes
            self.stream.write("\r\x1b[K")
            self._pending = ""
        self.stream.write(text + "\n")
        self.stream.flush()

    def pending(self, text: str) -> None:
        """Show ``text`` as work in progress (a terminal only) until the next line or
        ``pending`` call; ``""`` clears it."""
        if self.quiet or not self.palette.colour:
            return
        line = self.palette.paint(f"  … {text}", "dim") if text else ""
        self.stream.write("\r\x1b[K" + line)
        self.stream.flush()
        self._pending = line

    def heading(self, text: str) -> None:
        """A line that opens a part of the output."""
        self._write(self.palette.paint(text, "bold"))

    def note(self, text: str) -> None:
        """A plain informational line."""
        self._write(text)

    def state(self, name: str, state: str, detail: str = "", tone: str = "green") -> None:
        """``name`` is in ``state``: the line of one component (ready, stopped, crashing…)."""
        mark = {"green": "✓", "yellow": "!", "red": "✗"}.get(tone, "·")
        prefix = f"  {self.palette.paint(mark, tone)} " if self.palette.colour else "  "
        padding = " " * max(0, _STATE_WIDTH - len(state))
        text = f"{prefix}{name:<{_NAME_WIDTH}} {self.palette.paint(state, tone)}"
        self._write(f"{text}{padding}  {detail}" if detail else text)

    def ready(self, name: str, detail: str = "") -> None:
        """``name`` is ready."""
        self.state(name, "ready", detail)

    def problem(self, name: str, state: str, detail: str) -> None:
        """``name`` is in trouble: one line that says what happened and where to look."""
        self.state(name, state, detail, tone="red")

    def headline(self, text: str) -> None:
        """The line a person came for (the URL): bold, and printed even when quiet."""
        self._write("", always=True)
        self._write(self.palette.paint(text, "bold"), always=True)
        self._write("", always=True)
