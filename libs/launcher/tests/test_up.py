"""`parley up`'s choices made before anything starts."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pytest

from parley_launcher.state import LauncherState, state_path, without_credentials
from parley_launcher.up import log_format, service_specs, up


def test_log_format_comes_from_the_flag_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    assert log_format(None) == "human"
    monkeypatch.setenv("LOG_FORMAT", "JSON")
    assert log_format(None) == "json"
    assert log_format("human") == "human"
    monkeypatch.setenv("LOG_FORMAT", "yaml")
    with pytest.raises(SystemExit, match="LOG_FORMAT must be one of human, json"):
        log_format(None)


def test_each_service_gets_its_port_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STT_HTTP_PORT", "19101")
    [stt] = service_specs(["stt"])
    assert (stt.name, stt.module, stt.port, stt.env) == (
        "stt",
        "parley_stt",
        19101,
        {"STT_HTTP_PORT": "19101"},
    )
    with pytest.raises(SystemExit, match="unknown service"):
        service_specs(["nope"])


def test_a_second_launcher_on_the_same_data_dir_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A live process (this one's parent) already runs from the data dir.
    LauncherState(os.getppid(), str(tmp_path)).save(state_path(tmp_path))
    args = argparse.Namespace(data_dir=str(tmp_path), only=None, scale=None, log_format=None)
    assert up(args) == 1
    assert f"launcher pid {os.getppid()}" in capsys.readouterr().err
    assert not (tmp_path / "logs").exists()  # nothing was started


def test_no_credentials_reach_the_state_file() -> None:
    assert without_credentials(
        "postgresql://app:s3cret@db.internal:5433/parley?sslmode=require"
    ) == ("postgresql://db.internal:5433/parley")
    assert without_credentials("nats://token@127.0.0.1:4222") == "nats://127.0.0.1:4222"
    # A NATS cluster's seeds stay a list.
    assert without_credentials("nats://u:p@a:4222, nats://b:4223") == "nats://a:4222,nats://b:4223"
