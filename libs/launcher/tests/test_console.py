"""The console: plain text off a terminal, colour on one, the URL always."""

from __future__ import annotations

import io

import pytest

from parley_launcher.console import Console, wants_colour


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_lines_are_plain_text() -> None:
    out = io.StringIO()
    console = Console(out)
    console.pending("starting NATS")  # a terminal-only status line: nothing here
    console.ready("NATS", "nats://127.0.0.1:4222")
    console.problem("stt", "stopped", "exited with status 1")
    console.headline("Parley is up: http://127.0.0.1:8000/")
    text = out.getvalue()
    assert "\x1b" not in text
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[0] == "  NATS        ready      nats://127.0.0.1:4222"
    assert lines[1] == "  stt         stopped    exited with status 1"
    assert lines[-2:] == ["Parley is up: http://127.0.0.1:8000/", ""]


def test_on_a_terminal_states_are_coloured_and_the_url_is_bold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    out = _Tty()
    console = Console(out)
    console.ready("gateway", "port 8000")
    console.headline("Parley is up: http://127.0.0.1:8000/")
    text = out.getvalue()
    assert "\x1b[32m✓\x1b[0m gateway" in text
    assert "\x1b[1mParley is up: http://127.0.0.1:8000/\x1b[0m" in text


def test_no_color_turns_colour_off_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    assert wants_colour(_Tty()) is False
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert wants_colour(_Tty()) is False


def test_a_pending_line_is_replaced_by_the_next_line() -> None:
    out = _Tty()
    console = Console(out, colour=True)
    console.pending("starting NATS")
    console.ready("NATS", "nats://127.0.0.1:4222")
    text = out.getvalue()
    assert text.count("starting NATS") == 1
    assert text.index("starting NATS") < text.rindex("\r\x1b[K") < text.index("NATS  ")
    console.pending("waiting for stt")
    console.pending("")
    assert out.getvalue().endswith("\r\x1b[K")


def test_quiet_prints_only_the_headline() -> None:
    out = io.StringIO()
    console = Console(out, quiet=True)
    console.heading("Starting Parley")
    console.ready("NATS", "x")
    console.problem("stt", "stopped", "y")
    console.headline("Parley is up: http://127.0.0.1:8000/")
    assert out.getvalue() == "\nParley is up: http://127.0.0.1:8000/\n\n"
