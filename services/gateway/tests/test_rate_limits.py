"""Rate limits on the real embedded NATS: counts shared through the KV bucket, exact under
concurrency, per user and per IP apart, windows that reopen, and requests let through
promptly when the bucket cannot answer."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr, ValidationError

from parley_common.bus import Bus
from parley_common.errors import RateLimitedError
from parley_common.testing import serving
from parley_common.tokens import AuthSettings
from parley_gateway.app import create_app
from parley_gateway.limits import Rate, RateLimiter, RateRules, open_rate_limiter
from parley_gateway.limits.counter import BUCKET, WindowCounters, open_bucket
from parley_gateway.limits.rules import DEFAULT_IP_RULES, DEFAULT_USER_RULES, parse_rules
from parley_gateway.settings import GatewaySettings
from parley_launcher.embedded.nats_server import EmbeddedNats
from parley_launcher.embedded.process import free_port

WINDOW_S = 10
# Three seconds into a window: it ends in seven.
T0 = 1_000_000 * WINDOW_S + 3.0


class Clock:
    """A settable wall clock: windows move only when a test moves it."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def someone() -> str:
    """An identity no other test counts for."""
    return f"user-{uuid.uuid4()}"


@pytest.fixture
async def second_bus(nats_url: str) -> AsyncIterator[Bus]:
    """Another connection, as another gateway replica holds."""
    b = await Bus.connect(nats_url, name="test-replica")
    yield b
    await b.close()


async def limiter_on(
    bus: Bus,
    user: RateRules | None = None,
    ip: RateRules | None = None,
    clock: Clock | None = None,
    timeout_s: float = 2.0,
) -> RateLimiter:
    kv = await open_bucket(bus.js, WINDOW_S)
    return RateLimiter(
        WindowCounters(kv), user or {}, ip or {}, timeout_s=timeout_s, clock=clock or Clock()
    )


async def admitted(limiter: RateLimiter, user: str | None, ip: str | None) -> bool:
    try:
        await limiter.check("chat", user_id=user, ip=ip)
    except RateLimitedError:
        return False
    return True


def unchecked(kind: str) -> float:
    return REGISTRY.get_sample_value("parley_rate_limit_unchecked_total", {"kind": kind}) or 0.0


# --- configuration ------------------------------------------------------------------------


def test_rules_change_only_the_kinds_they_name() -> None:
    rules = parse_rules("session_start=3/10s, chat=20/1m, clone=off, tts=5/2h", DEFAULT_USER_RULES)
    assert rules["session_start"] == Rate(3, 10)
    assert rules["chat"] == Rate(20, 60)
    assert rules["tts"] == Rate(5, 7200)
    assert "clone" not in rules
    assert rules["stt"] == DEFAULT_USER_RULES["stt"]


@pytest.mark.parametrize(
    "value",
    [
        "chat=0/60s",
        "chat=5/0s",
        "chat=5/2d",
        "chat=5/100000s",
        "bogus=1/1s",
        "chat",
        "chat=5/1s,chat=6/1s",
    ],
)
def test_a_bad_rule_is_refused_naming_the_variable(value: str) -> None:
    with pytest.raises(ValidationError, match="GATEWAY_RATE_LIMITS_USER"):
        GatewaySettings(rate_limits_user=value)  # type: ignore[arg-type]  # read as the env is
    with pytest.raises(ValidationError, match="GATEWAY_RATE_LIMITS_IP"):
        GatewaySettings(rate_limits_ip=value)  # type: ignore[arg-type]


def test_the_variables_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATEWAY_RATE_LIMITS_USER", "session_start=3/60s")
    monkeypatch.setenv("GATEWAY_RATE_LIMITS_IP", "tts=off")
    settings = GatewaySettings()
    assert settings.rate_limits_user["session_start"] == Rate(3, 60)
    assert "tts" not in settings.rate_limits_ip
    assert settings.rate_limits_ip["chat"] == DEFAULT_IP_RULES["chat"]


async def test_disabled_limits_check_nothing(bus: Bus) -> None:
    settings = GatewaySettings(rate_limits_enabled=False)
    limiter = await open_rate_limiter(bus, settings)
    for _ in range(3):
        await limiter.check("session_start", user_id=someone(), ip="10.0.0.1")


async def test_the_bucket_outlives_the_longest_window(bus: Bus) -> None:
    await open_bucket(bus.js, 60)
    kv = await open_bucket(bus.js, 3 * 3600)
    assert (await kv.status()).ttl == 3 * 3600
    # A replica with shorter windows does not shorten it under the others.
    kv = await open_bucket(bus.js, 60)
    assert (await kv.status()).ttl == 3 * 3600


# --- counting -----------------------------------------------------------------------------


async def test_the_n_plus_first_is_refused_until_the_window_reopens(bus: Bus) -> None:
    clock = Clock()
    limiter = await limiter_on(bus, user={"chat": Rate(3, WINDOW_S)}, clock=clock)
    user = someone()
    for _ in range(3):
        await limiter.check("chat", user_id=user, ip="10.0.0.1")
    with pytest.raises(RateLimitedError) as refused:
        await limiter.check("chat", user_id=user, ip="10.0.0.1")
    assert refused.value.code == "rate_limited"
    assert refused.value.retry_after_s == pytest.approx(7.0)
    assert refused.value.details[0]["scope"] == "user"
    # Still refused later in the same window, with less to wait.
    clock.now += 6.5
    with pytest.raises(RateLimitedError) as again:
        await limiter.check("chat", user_id=user, ip="10.0.0.1")
    assert again.value.retry_after_s == pytest.approx(0.5)
    # The next window admits three again.
    clock.now += 0.5
    for _ in range(3):
        await limiter.check("chat", user_id=user, ip="10.0.0.1")
    assert not await admitted(limiter, user, "10.0.0.1")


async def test_kinds_are_counted_apart(bus: Bus) -> None:
    rate = Rate(1, WINDOW_S)
    limiter = await limiter_on(bus, user={"chat": rate, "tts": rate})
    user = someone()
    await limiter.check("chat", user_id=user, ip=None)
    await limiter.check("tts", user_id=user, ip=None)
    with pytest.raises(RateLimitedError):
        await limiter.check("tts", user_id=user, ip=None)


async def test_users_and_addresses_are_limited_apart(bus: Bus) -> None:
    limiter = await limiter_on(
        bus, user={"chat": Rate(2, WINDOW_S)}, ip={"chat": Rate(3, WINDOW_S)}
    )
    alice, bob, carol = someone(), someone(), someone()
    office, home = f"10.1.{uuid.uuid4().int % 250}.1", f"2001:db8::{uuid.uuid4().hex[:4]}"
    assert await admitted(limiter, alice, office)
    assert await admitted(limiter, alice, home)
    # Alice has used her two; her addresses have room, other users are untouched.
    assert not await admitted(limiter, alice, f"192.0.2.{uuid.uuid4().int % 250}")
    assert await admitted(limiter, bob, office)
    assert await admitted(limiter, carol, office)
    # The office has used its three, whoever asks next from there.
    with pytest.raises(RateLimitedError) as refused:
        await limiter.check("chat", user_id=bob, ip=office)
    assert refused.value.details[0]["scope"] == "ip"
    assert not await admitted(limiter, someone(), office)
    # A request the address refused was not charged to its user: Bob still has one.
    assert await admitted(limiter, bob, home)
    assert not await admitted(limiter, bob, home)


async def test_without_authentication_only_the_address_is_limited(bus: Bus) -> None:
    limiter = await limiter_on(
        bus, user={"chat": Rate(1, WINDOW_S)}, ip={"chat": Rate(2, WINDOW_S)}
    )
    address = f"10.2.{uuid.uuid4().int % 250}.7"
    assert await admitted(limiter, None, address)
    assert await admitted(limiter, None, address)
    assert not await admitted(limiter, None, address)


async def test_two_replicas_share_one_count(bus: Bus, second_bus: Bus) -> None:
    rules: RateRules = {"chat": Rate(4, WINDOW_S)}
    first = await limiter_on(bus, user=rules)
    second = await limiter_on(second_bus, user=rules)
    user = someone()
    results = [await admitted((first, second)[i % 2], user, None) for i in range(6)]
    assert results == [True, True, True, True, False, False]


async def test_a_burst_admits_exactly_the_limit(bus: Bus, second_bus: Bus) -> None:
    rules: RateRules = {"chat": Rate(8, WINDOW_S)}
    replicas = (await limiter_on(bus, user=rules), await limiter_on(second_bus, user=rules))
    user = someone()
    results = await asyncio.gather(*(admitted(replicas[i % 2], user, None) for i in range(30)))
    assert sum(results) == 8


async def test_identities_of_any_shape_are_counted(bus: Bus) -> None:
    # KV keys allow few characters; identities are hashed into them.
    limiter = await limiter_on(
        bus, user={"chat": Rate(1, WINDOW_S)}, ip={"chat": Rate(1, WINDOW_S)}
    )
    for user, ip in (("a b/c:*>é", "::1"), (f"{uuid.uuid4()}@example.com", "fe80::1%eth0")):
        assert await admitted(limiter, user + someone(), ip + someone())


# --- when the bucket cannot answer ----------------------------------------------------------


@pytest.fixture
def own_nats(tmp_path: Path) -> Iterator[EmbeddedNats]:
    """A NATS server this test may stop."""
    server = EmbeddedNats(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


async def test_an_unreachable_bucket_lets_requests_through_promptly(
    own_nats: EmbeddedNats, caplog: pytest.LogCaptureFixture
) -> None:
    bus = await Bus.connect(own_nats.url, name="test-limiter")
    try:
        limiter = await limiter_on(bus, user={"chat": Rate(1, WINDOW_S)}, timeout_s=0.3)
        user = someone()
        assert await admitted(limiter, user, None)
        assert not await admitted(limiter, user, None)
        before = unchecked("chat")
        caplog.set_level(logging.WARNING, logger="parley_gateway.limits.limiter")

        # The bucket is gone (deleted by an operator): answered at once, let through.
        await bus.js.delete_key_value(BUCKET)
        assert await admitted(limiter, user, None)

        # NATS is down and the client is reconnecting: let through within the timeout.
        await asyncio.to_thread(own_nats.stop)
        started = time.monotonic()
        assert await admitted(limiter, user, None)
        assert await admitted(limiter, user, None)
        assert time.monotonic() - started < 2 * 0.3 + 0.5

        assert unchecked("chat") - before == 3
        warnings = [r for r in caplog.records if "not enforced" in r.getMessage()]
        assert len(warnings) == 1
    finally:
        # nats-py's close flushes the transport of the server that is gone: that may fail.
        with contextlib.suppress(ConnectionError):
            await bus.nc.close()


# --- on a route ---------------------------------------------------------------------------


async def test_a_route_answers_429_with_retry_after(nats_url: str, database_url: str) -> None:
    # Auth off: only the address (127.0.0.1) is limited. A window of its own (3607 s), so
    # that no other test's requests share its counter.
    rate = Rate(2, 3607)
    _, left_s = rate.window_at(time.time())
    if left_s < 10:  # the requests below must fall in one window
        await asyncio.sleep(left_s)
    port = free_port()
    settings = GatewaySettings(
        nats_url=nats_url,
        database_url=SecretStr(database_url),
        http_port=port,
        rate_limits_ip={"stt": rate},
        # A busy machine must not make the check time out (and let the request through).
        rate_limits_timeout_s=5.0,
    )
    app = create_app(settings, AuthSettings.model_construct())
    async with serving(app, port) as url, httpx.AsyncClient(base_url=url, timeout=10) as http:
        upload = {"audio_file": ("noise.wav", b"not audio at all", "audio/wav")}
        answers = [await http.post("/api/v1/voice/stt", files=upload) for _ in range(3)]
    # The first two reach the route (which refuses the bytes), the third does not.
    assert [a.status_code for a in answers] == [415, 415, 429]
    refused = answers[2]
    assert 1 <= int(refused.headers["Retry-After"]) <= 3607
    body = refused.json()
    assert body["success"] is False
    assert body["error"]["code"] == "rate_limited"
