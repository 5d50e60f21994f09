"""``parley up --scale`` / ``PARLEY_SCALE``: how many processes of each service, and how the
extra ones are named, ported and told to share the gateway's port."""

from __future__ import annotations

import itertools

import pytest

from parley_launcher.cli import _parser
from parley_launcher.scale import REUSE_PORT_ENV, SCALE_ENV, parse_scale, replicas
from parley_launcher.supervisor import ServiceSpec
from parley_launcher.up import SERVICES, service_specs


def test_the_flag_wins_over_the_variable_and_a_service_left_out_runs_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(SCALE_ENV, "tts=3")
    assert parse_scale(None, SERVICES) == {"tts": 3}
    assert parse_scale(" stt=2 , gateway=2 ", SERVICES) == {"stt": 2, "gateway": 2}
    assert parse_scale("", SERVICES) == {}
    args = _parser().parse_args(["up", "--scale", "stt=2,gateway=2"])
    assert args.scale == "stt=2,gateway=2"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("stt", "not <service>=<processes>"),
        ("nope=2", "services are analytics"),
        ("stt=0", "stt wants 1 to 16 processes, got '0'"),
        ("stt=two", "got 'two'"),
    ],
)
def test_a_bad_entry_stops_with_what_is_expected(text: str, says: str) -> None:
    with pytest.raises(SystemExit, match=says):
        parse_scale(text, SERVICES)


def test_extra_workers_get_ports_of_their_own_and_the_first_keeps_its_name() -> None:
    ports = itertools.count(20001)
    spec = ServiceSpec("stt", "parley_stt", {"STT_HTTP_PORT": "9101"}, 9101)
    assert replicas(spec, 1, lambda: next(ports)) == [spec]
    scaled = replicas(spec, 3, lambda: next(ports))
    assert [(s.name, s.module, s.port, s.env) for s in scaled] == [
        ("stt", "parley_stt", 9101, {"STT_HTTP_PORT": "9101"}),
        ("stt-2", "parley_stt", 20001, {"STT_HTTP_PORT": "20001"}),
        ("stt-3", "parley_stt", 20002, {"STT_HTTP_PORT": "20002"}),
    ]


def test_gateway_processes_share_the_one_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_HTTP_PORT", "18000")
    specs = service_specs(["gateway", "stt"], {"gateway": 2, "stt": 2})
    by_name = {s.name: s for s in specs}
    assert sorted(by_name) == ["gateway", "gateway-2", "stt", "stt-2"]
    for name in ("gateway", "gateway-2"):
        assert by_name[name].port == 18000
        assert by_name[name].env == {"GATEWAY_HTTP_PORT": "18000", REUSE_PORT_ENV: "true"}
    assert by_name["stt"].port != by_name["stt-2"].port
    # One gateway process binds its port as it always did.
    [alone] = service_specs(["gateway"], {})
    assert REUSE_PORT_ENV not in alone.env
