"""The local final transcript with faster-whisper's 30 s window and with the utterance only,
side by side on the same audio: the questions of ``bench.real_models`` spoken by the local
Piper voice, cut as the STT session hands them to the model when the user falls silent
(320 ms of pre-roll before the voice, the speech, the VAD's ~64 ms of lag after it). Piper
speaks with random noise, so each round asks every question in a new take of it.

Both models are Whisper base, int8, ``PARLEY_STT_THREADS`` threads, with the provider's final
settings (``local_whisper.transcribe``); the only difference is the encoder's input. Each
utterance is transcribed by both, in alternating order, one at a time, with the same seed for
the sampling of a retry at a higher temperature.

    python -m bench.stt_window --rounds 10
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.audio import BYTES_PER_MS, spoken, word_error_rate
from bench.mic import voiced_span_ms
from bench.real_models import QUESTIONS
from bench.stats import summary

PREROLL_MS = 320  # parley_stt.session.PREROLL_FRAMES of 32 ms
VAD_LAG_MS = 64  # the silence is noticed a frame or two after the voice stops


def utterance(text: str) -> npt.NDArray[np.float32]:
    """A new take of ``text`` spoken, as the session's final transcription gets it (float32,
    16 kHz)."""
    pcm = spoken.__wrapped__(text)  # not the cached take: every round hears a new one
    first_ms, last_ms = voiced_span_ms(pcm)
    start = int(max(0.0, first_ms - PREROLL_MS)) * BYTES_PER_MS
    end = int(last_ms + VAD_LAG_MS) * BYTES_PER_MS
    return np.frombuffer(pcm[start:end], dtype="<i2").astype(np.float32) / 32768.0


def models() -> dict[str, Any]:
    """The two models, by name, loaded from the same files with the provider's settings."""
    from faster_whisper import WhisperModel

    from parley_common.settings import positive_int_env
    from parley_stt.models import whisper_model_dir
    from parley_stt.providers.local_whisper import THREADS_ENV
    from parley_stt.providers.whisper_utterance import UtteranceWhisperModel

    options: dict[str, Any] = {
        "device": "cpu",
        "compute_type": "int8",
        "cpu_threads": positive_int_env(THREADS_ENV, 2),
        "local_files_only": True,
    }
    directory = str(whisper_model_dir())
    return {
        "window_30s": WhisperModel(directory, **options),
        "utterance": UtteranceWhisperModel(directory, **options),
    }


def main(rounds: int) -> dict[str, Any]:
    """Transcribe every question ``rounds`` times with both models; print and return the
    final-transcript time (ms) and the mean word error rate of each."""
    import ctranslate2

    from parley_stt.providers.local_whisper import transcribe

    named = models()
    for model in named.values():  # first runs allocate; keep them out of the figures
        transcribe(model, utterance(QUESTIONS[0]), "en", final=True)
    took: dict[str, list[float]] = {name: [] for name in named}
    wers: dict[str, list[float]] = {name: [] for name in named}
    order = list(named)
    for turn in range(rounds * len(QUESTIONS)):
        question = QUESTIONS[turn % len(QUESTIONS)]
        audio = utterance(question)
        texts = {}
        for name in order if turn % 2 == 0 else reversed(order):
            ctranslate2.set_random_seed(turn)
            started = time.perf_counter()
            result = transcribe(named[name], audio, "en", final=True)
            took[name].append((time.perf_counter() - started) * 1000)
            wers[name].append(word_error_rate(question, result.text))
            texts[name] = result.text
        print(
            f"{len(audio) / 16_000:.2f} s {question!r}: "
            + " | ".join(f"{n} {took[n][-1]:.0f} ms {texts[n]!r}" for n in order),
            flush=True,
        )
    report: dict[str, Any] = {
        name: {
            "final_ms": summary(took[name]),
            "wer_mean": round(sum(wers[name]) / len(wers[name]), 3),
        }
        for name in named
    }
    print(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10, help="takes of each question")
    main(parser.parse_args().rounds)
