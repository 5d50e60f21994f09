"""The bus layer on a real nats-server."""

from __future__ import annotations

import asyncio

import pytest

from parley_common.bus import Bus, MessageMeta, Received
from parley_common.bus.client import seed_urls
from parley_common.bus.headers import new_traceparent
from parley_common.bus.streams import StreamLimits
from parley_common.contracts import subjects
from parley_common.contracts.bus import SessionEnd, TextInput, control_adapter
from parley_common.contracts.subjects import SessionChannel

FRAMES = 10_000
FRAME_BYTES = 640


async def test_ten_thousand_audio_frames_arrive_complete_in_order_with_headers(
    bus: Bus, nats_url: str
) -> None:
    subject = subjects.session("s-bus", SessionChannel.AUDIO_IN)
    received: list[Received] = []
    done = asyncio.Event()

    async def on_frame(msg: Received) -> None:
        received.append(msg)
        if len(received) == FRAMES:
            done.set()

    consumer = await Bus.connect(nats_url, name="consumer")
    try:
        await consumer.subscribe(subject, on_frame)
        await consumer.nc.flush()
        trace = new_traceparent()
        for seq in range(1, FRAMES + 1):
            payload = seq.to_bytes(4, "big") * (FRAME_BYTES // 4)
            meta = MessageMeta(session_id="s-bus", turn_id=7, seq=seq, traceparent=trace)
            await bus.publish(subject, payload, meta)
        await bus.nc.flush()
        await asyncio.wait_for(done.wait(), timeout=30)
    finally:
        await consumer.close()

    assert len(received) == FRAMES
    for expected_seq, msg in enumerate(received, start=1):
        assert msg.meta.seq == expected_seq
        assert msg.meta.session_id == "s-bus"
        assert msg.meta.turn_id == 7
        assert msg.meta.traceparent == trace
        assert msg.meta.origin_us > 0
        assert len(msg.data) == FRAME_BYTES
        assert msg.data == expected_seq.to_bytes(4, "big") * (FRAME_BYTES // 4)


async def test_models_round_trip_through_the_codec(bus: Bus) -> None:
    subject = subjects.session("s-codec", SessionChannel.CONTROL)
    got: asyncio.Queue[Received] = asyncio.Queue()

    async def on_msg(msg: Received) -> None:
        await got.put(msg)

    await bus.subscribe(subject, on_msg)
    await bus.publish(subject, TextInput(text="hello"), MessageMeta(session_id="s-codec"))
    await bus.publish(subject, SessionEnd(), MessageMeta(session_id="s-codec"))
    first = (await asyncio.wait_for(got.get(), 5)).decode(control_adapter)
    second = (await asyncio.wait_for(got.get(), 5)).decode(control_adapter)
    assert first == TextInput(text="hello")
    assert isinstance(second, SessionEnd)


async def test_request_goes_to_exactly_one_member_of_a_queue_group(bus: Bus, nats_url: str) -> None:
    hits: list[str] = []
    members = [await Bus.connect(nats_url, name=f"m{i}") for i in range(3)]
    try:
        for i, member in enumerate(members):

            async def answer(msg: Received, i: int = i, member: Bus = member) -> None:
                hits.append(f"m{i}")
                await member.respond(msg, f"m{i}".encode(), msg.meta)

            await member.subscribe("parley.test.q", answer, queue="workers")
            await member.nc.flush()
        for _ in range(9):
            reply = await bus.request("parley.test.q", b"x", MessageMeta(session_id="s"))
            assert reply.data.decode() in {"m0", "m1", "m2"}
    finally:
        for member in members:
            await member.close()
    assert len(hits) == 9


async def test_jetstream_publish_is_acknowledged_and_stored(bus: Bus) -> None:
    await bus.ensure_stream("TEST_EVENTS", ["parley.testevents.>"])
    await bus.ensure_stream("TEST_EVENTS", ["parley.testevents.>"])  # idempotent
    ack = await bus.js_publish(
        "parley.testevents.x", TextInput(text="kept"), MessageMeta(session_id="s-js", turn_id=3)
    )
    assert ack.stream == "TEST_EVENTS"
    stored = await bus.js.get_msg("TEST_EVENTS", ack.seq)
    assert stored.data == TextInput(text="kept").model_dump_json().encode()
    assert stored.headers is not None
    assert MessageMeta.from_headers(stored.headers).turn_id == 3


@pytest.mark.parametrize(
    ("headers", "turn"), [({}, 0), ({"Parley-Turn": "x"}, 0), ({"Parley-Turn": "12"}, 12)]
)
def test_missing_or_bad_numeric_headers_read_as_zero(headers: dict[str, str], turn: int) -> None:
    assert MessageMeta.from_headers(headers).turn_id == turn


async def test_the_events_stream_has_configured_limits_and_drops_repeated_ids(bus: Bus) -> None:
    limits = StreamLimits(max_age_s=3600, max_bytes=10_000_000, duplicate_window_s=60)
    await bus.ensure_stream("TEST_LIMITS", ["parley.testlimits.>"], limits)
    info = await bus.js.stream_info("TEST_LIMITS")
    assert info.config.max_age == 3600
    assert info.config.max_bytes == 10_000_000
    assert info.config.duplicate_window == 60
    # Changed limits are applied to the existing stream.
    tighter = StreamLimits(max_age_s=600, max_bytes=5_000_000, duplicate_window_s=60)
    await bus.ensure_stream("TEST_LIMITS", ["parley.testlimits.>"], tighter)
    assert (await bus.js.stream_info("TEST_LIMITS")).config.max_age == 600
    meta = MessageMeta(session_id="s")
    first = await bus.js_publish("parley.testlimits.a", b"1", meta, msg_id="fact-1")
    again = await bus.js_publish("parley.testlimits.a", b"1", meta, msg_id="fact-1")
    other = await bus.js_publish("parley.testlimits.a", b"2", meta, msg_id="fact-2")
    assert again.duplicate
    assert again.seq == first.seq
    assert other.seq == first.seq + 1
    assert (await bus.js.stream_info("TEST_LIMITS")).state.messages == 2


def test_stream_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARLEY_EVENTS_MAX_AGE_S", "60")
    monkeypatch.setenv("PARLEY_EVENTS_REPLICAS", "3")
    limits = StreamLimits.from_env()
    assert limits.max_age_s == 60
    assert limits.replicas == 3
    assert limits.config("E", ["e.>"]).num_replicas == 3
    monkeypatch.setenv("PARLEY_EVENTS_MAX_BYTES", "lots")
    with pytest.raises(ValueError, match="PARLEY_EVENTS_MAX_BYTES"):
        StreamLimits.from_env()


def test_nats_url_may_list_a_clusters_seeds() -> None:
    assert seed_urls("nats://a:4222") == ["nats://a:4222"]
    assert seed_urls("nats://a:4222, nats://b:4222,,nats://c:4222") == [
        "nats://a:4222",
        "nats://b:4222",
        "nats://c:4222",
    ]
    with pytest.raises(ValueError, match="NATS_URL"):
        seed_urls(" , ")
