"""Spoken test audio in languages the offline Piper voice does not speak, by eSpeak NG.

The ``espeakng-loader`` wheel ships libespeak-ng and its data for about a hundred languages
(no system package, nothing downloaded); its C API is called through ctypes in synchronous
mode, samples collected by a callback. Robotic, but Whisper base recognises it, including the
language, for the sentences the tests use. The library holds global state: one lock
serialises every synthesis.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import importlib.util
import threading
from typing import Any

import numpy as np

from bench.audio import INPUT_RATE
from parley_tts.resample import Resampler

__all__ = ["espeak_available", "speak_in", "spoken_in"]

_SYNCHRONOUS = 2  # AUDIO_OUTPUT_SYNCHRONOUS: audio goes to the callback, Synth returns after
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE = 1  # espeakRATE, words per minute
# Slower than eSpeak's 175 wpm: at its own pace Whisper base often mistakes the language.
WORDS_PER_MINUTE = 130
_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)
_lock = threading.Lock()


@functools.cache
def _engine() -> tuple[Any, int]:
    """The initialised library and its sample rate."""
    import espeakng_loader  # type: ignore[import-untyped]

    lib = ctypes.CDLL(espeakng_loader.get_library_path())
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.espeak_Synth.argtypes = [
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.c_uint,
        ctypes.c_void_p,
        ctypes.c_void_p,
    ]
    rate = lib.espeak_Initialize(_SYNCHRONOUS, 0, espeakng_loader.get_data_path().encode(), 0)
    if rate <= 0:
        raise RuntimeError("eSpeak NG did not initialise")
    return lib, rate


def espeak_available() -> bool:
    """Whether the ``espeakng-loader`` package is installed (requirements-dev.txt has it)."""
    return importlib.util.find_spec("espeakng_loader") is not None


@functools.cache
def spoken_in(language: str, text: str) -> bytes:
    """``text`` spoken by eSpeak NG's ``language`` voice (``"es"``, ``"de"``…) as PCM16 mono
    16 kHz, as a client's microphone would send it (cached per process)."""
    with _lock:
        lib, rate = _engine()
        pieces: list[np.ndarray[Any, np.dtype[np.int16]]] = []

        def collect(wav: Any, count: int, _events: Any) -> int:
            if count > 0:
                pieces.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
            return 0

        callback = _CALLBACK(collect)  # referenced until Synth returns
        lib.espeak_SetSynthCallback(callback)
        if lib.espeak_SetVoiceByName(language.encode()) != 0:
            raise ValueError(f"eSpeak NG has no voice for {language!r}")
        lib.espeak_SetParameter(_RATE, WORDS_PER_MINUTE, 0)
        data = text.encode()
        if lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None):
            raise RuntimeError("eSpeak NG could not synthesise the text")
    pcm = np.concatenate(pieces).astype("<i2").tobytes()
    resampler = Resampler(rate, INPUT_RATE)
    return resampler.process(pcm) + resampler.flush()


async def speak_in(language: str, text: str) -> bytes:
    """``spoken_in`` from async code, synthesised off the event loop."""
    return await asyncio.to_thread(spoken_in, language, text)
