"""``/metrics`` after a real spoken turn: valid Prometheus exposition, the shared metrics of
every stage present and counted, and no label that takes a session (or any other) id."""

from __future__ import annotations

import re

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.conversation.conftest import one_spoken_turn

# A UUID, or any long run of hex/digits: what a session, turn or user id looks like.
ID_LIKE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}|^[0-9a-f]{16,}$|^\d{6,}$", re.I)
LABELS_ALLOWED = {
    "service",
    "provider",
    "model",
    "stage",
    "reason",
    "direction",
    "code",
    "kind",
    "outcome",
    "scope",
    "target",
    "table",
    "queue",
    "consumer",
    "fallback",
    "from_provider",
    "to_provider",
    "le",
    "quantile",
}
EXPECTED = {
    "parley_active_sessions",
    "parley_audio_frames",  # the parser strips _total from counters
    "parley_stt_final_seconds",
    "parley_llm_first_token_seconds",
    "parley_tts_first_byte_seconds",
    "parley_voice_to_voice_seconds",
    "parley_event_loop_lag_seconds",
    "parley_bus_request_seconds",
    "parley_db_write_seconds",
    "parley_provider_errors",
    "parley_interruptions",
}


async def test_metrics_after_a_spoken_turn(platform_url: str) -> None:
    await one_spoken_turn(platform_url)
    async with httpx.AsyncClient(base_url=platform_url, timeout=10) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    parley = {name for name in families if name.startswith("parley_")}
    assert not EXPECTED - parley, EXPECTED - parley
    for name in parley:
        for sample in families[name].samples:
            assert set(sample.labels) <= LABELS_ALLOWED, (name, sample.labels)
            for value in sample.labels.values():
                assert not ID_LIKE.search(value), (name, sample.labels)

    def total(name: str, **labels: str) -> float:
        return sum(
            s.value
            for s in families[name].samples
            if s.name == f"{name}_total" and labels.items() <= s.labels.items()
        )

    assert total("parley_audio_frames", service="stt", direction="in") > 50  # 20 ms frames
    assert total("parley_audio_frames", service="tts", direction="out") > 0
    lag = families["parley_event_loop_lag_seconds"]
    assert any(s.name.endswith("_count") and s.value > 0 for s in lag.samples)
