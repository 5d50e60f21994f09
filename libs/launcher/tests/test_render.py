"""Log lines as a person reads them, and the error a line reports."""

from __future__ import annotations

import json

from parley_launcher.console import Palette
from parley_launcher.render import error_summary, render, timestamp

PLAIN = Palette(colour=False)


def _line(**fields: object) -> str:
    entry = {"ts": "2026-12-01T09:00:01.250Z", "level": "info", "service": "stt", "logger": "x"}
    return json.dumps({**entry, **fields})


def test_a_json_line_reads_as_time_service_level_message_and_fields() -> None:
    text = render(_line(msg="service starting", port=9101, worker_id="stt-a 1"), PLAIN)
    assert "stt" in text
    assert "INFO" in text
    assert "service starting" in text
    assert 'port=9101 worker_id="stt-a 1"' in text
    assert "{" not in text
    assert "logger" not in text  # framing fields are not repeated as k=v
    assert "\x1b[" not in text
    clock = text.split()[0]
    assert len(clock) == 12
    assert clock.endswith(".250")


def test_colour_marks_the_level_and_dims_the_fields() -> None:
    text = render(_line(level="error", msg="boom", error="x"), Palette(colour=True))
    assert "\x1b[31mERROR" in text
    assert "\x1b[2merror=x\x1b[0m" in text


def test_a_traceback_is_indented_under_its_line() -> None:
    exc = "Traceback (most recent call last):\n  File 'a.py'\nRuntimeError: boom"
    text = render(_line(level="error", msg="crashed", exc=exc), PLAIN)
    head, *rest = text.splitlines()
    assert "crashed" in head
    assert "exc=" not in head
    assert rest == [
        "    Traceback (most recent call last):",
        "      File 'a.py'",
        "    RuntimeError: boom",
    ]


def test_a_line_that_is_not_json_is_shown_as_it_is() -> None:
    assert render("[INF] nats-server ready\n", PLAIN) == "[INF] nats-server ready"
    assert render("{not json", PLAIN) == "{not json"


def test_error_summary_of_an_error_entry_names_message_error_and_exception() -> None:
    line = _line(level="error", msg="default provider failed to load", error="OSError('x')")
    assert error_summary(line) == "default provider failed to load: OSError('x')"
    exc = "Traceback (most recent call last):\n  ...\nValueError: bad port"
    assert (
        error_summary(_line(level="critical", msg="dead", exc=exc)) == "dead: ValueError: bad port"
    )


def test_error_summary_ignores_lines_that_report_no_error() -> None:
    assert error_summary(_line(level="info", msg="service starting")) is None
    assert error_summary(_line(level="warning", msg="nats error", error="x")) is None
    assert error_summary('  File "/x.py", line 3, in <module>') is None
    assert error_summary("UserWarning: something deprecated") is None


def test_error_summary_takes_the_last_line_of_a_plain_traceback() -> None:
    assert error_summary("ModuleNotFoundError: No module named 'x'\n") == (
        "ModuleNotFoundError: No module named 'x'"
    )
    assert error_summary("pydantic_core._pydantic_core.ValidationError: 1 validation error") == (
        "pydantic_core._pydantic_core.ValidationError: 1 validation error"
    )
    assert error_summary("KeyboardInterrupt") == "KeyboardInterrupt"


def test_timestamp_is_the_ts_of_a_json_line() -> None:
    assert timestamp(_line(msg="x")) == "2026-12-01T09:00:01.250Z"
    assert timestamp("plain") is None


def test_uvicorn_colour_copies_of_the_message_are_not_shown() -> None:
    text = render(_line(msg="Started server", color_message="\x1b[36mStarted\x1b[0m"), PLAIN)
    assert "color_message" not in text
    assert "\x1b" not in text
