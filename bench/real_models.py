"""Per-turn latency with the real local models (Whisper base, the offline LLM, Piper), every
service its own process, one caller asking spoken questions in real time.

    python -m bench.real_models --turns 20 --sensitivity high
    python -m bench.real_models --turns 10 --speculation both   # on and off, one platform
"""

from __future__ import annotations

import argparse
import asyncio
import json
from typing import Any

import httpx

from bench.audio import speak, word_error_rate
from bench.call import Call, Received
from bench.mic import Microphone, voiced_span_ms
from bench.platform import running_platform
from bench.stats import summary

QUESTIONS = [
    "What is the capital of France?",
    "How many days are there in a week?",
    "Can you tell me a fun fact about the moon?",
    "What colour is the sky on a clear day?",
    "How do I boil an egg?",
    "What is two plus two?",
    "Who wrote Romeo and Juliet?",
    "What is the tallest mountain in the world?",
    "Can you recommend a good book?",
    "What time of year do leaves fall from trees?",
]
STAGES = ("stt_final_ms", "llm_first_token_ms", "tts_first_byte_ms", "voice_to_voice_ms")
SILENCE_MS = {"high": 500, "medium": 1000, "low": 2000}


async def main(turns: int, sensitivity: str, speculation: str = "on") -> dict[str, Any]:
    """Ask ``turns`` questions with the speculative answer on, off or (``both``) one call
    each, on one platform; summarise the latency of each stage per setting."""
    audio = {q: await speak(q) for q in QUESTIONS}
    settings = ["on", "off"] if speculation == "both" else [speculation]
    reports: dict[str, Any] = {}
    async with running_platform() as platform:
        for setting in settings:
            print(f"speculative_answer {setting}", flush=True)
            report = await _one_call(platform.url, audio, turns, sensitivity, setting == "on")
            reports[f"speculation_{setting}"] = report
    print(json.dumps(reports, indent=2))
    return reports


async def _start(url: str, **config: Any) -> Call:
    """A call, once the workers take sessions (a loaded machine starts them slowly)."""
    for _ in range(60):
        try:
            return await Call.start(url, **config)
        except httpx.HTTPStatusError as exc:
            if exc.response.status_code != 503:
                raise
            print(f"not ready yet: {exc.response.text}", flush=True)
            await asyncio.sleep(2.0)
    return await Call.start(url, **config)


async def _answer_or_error(call: Call, mark: int) -> Received | None:
    """The turn's first audio frame, or None when the server reported an error first."""
    audio = asyncio.create_task(call.first_audio(after=mark, within_s=120))
    error = asyncio.create_task(
        call.wait_for("error", lambda e: e["data"]["severity"] == "error", 120, mark)
    )
    done, pending = await asyncio.wait({audio, error}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    return audio.result() if audio in done else None


async def _one_call(
    url: str, audio: dict[str, bytes], turns: int, sensitivity: str, speculative: bool
) -> dict[str, Any]:
    measured: dict[str, list[float]] = {stage: [] for stage in STAGES}
    measured["client_end_of_speech_to_audio_ms"] = []
    wers: list[float] = []
    unanswered = 0
    call = await _start(
        url,
        interrupt_sensitivity=sensitivity,
        response_style="concise",
        speculative_answer=speculative,
    )
    try:
        async with Microphone(call) as mic:
            for turn in range(1, turns + 1):
                question = QUESTIONS[(turn - 1) % len(QUESTIONS)]
                mark = len(call.log)
                _, end_ms = voiced_span_ms(audio[question])
                speech_end = mic.say(audio[question], end_ms)
                try:
                    final = await call.wait_for(
                        "transcript", lambda e: e["data"]["is_final"], within_s=60, after=mark
                    )
                except TimeoutError:
                    unanswered += 1
                    print(f"turn {turn}: not heard", flush=True)
                    continue
                wers.append(word_error_rate(question, final["data"]["text"]))
                first = await _answer_or_error(call, mark)
                if first is None:  # e.g. the model missed its first-word deadline under load
                    unanswered += 1
                    print(f"turn {turn}: {final['data']['text']!r} -> no answer", flush=True)
                    await asyncio.sleep(1.0)
                    continue
                first_audio = first.at
                measured["client_end_of_speech_to_audio_ms"].append(
                    (first_audio - await speech_end) * 1000
                )
                await call.wait_for("audio_end", within_s=120, after=mark)
                await asyncio.sleep(1.0)
                stages: dict[str, float] = {}
                for event in call.events("metrics"):
                    # The answered turn's id (a dropped speculation leaves a gap).
                    if event["data"]["turn_id"] == first.turn_id:
                        stages.update({k: v for k, v in event["data"].items() if v is not None})
                for stage in STAGES:
                    if stage in stages:
                        measured[stage].append(stages[stage])
                print(
                    f"turn {turn}: {final['data']['text']!r} -> "
                    f"{ {k: round(v) for k, v in stages.items() if k != 'turn_id'} }",
                    flush=True,
                )
    finally:
        await call.close()
    report = {name: summary(values) for name, values in measured.items()}
    report["silence_threshold_ms"] = {"value": SILENCE_MS[sensitivity]}
    report["wer_mean"] = {"value": round(sum(wers) / len(wers), 3)}
    report["unanswered_turns"] = {"value": unanswered}
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--sensitivity", default="high", choices=sorted(SILENCE_MS))
    parser.add_argument("--speculation", default="on", choices=["on", "off", "both"])
    args = parser.parse_args()
    asyncio.run(main(args.turns, args.sensitivity, args.speculation))
