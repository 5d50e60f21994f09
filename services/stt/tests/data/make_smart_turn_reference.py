"""Makes ``smart_turn_reference.npz``, once, offline (see README.md beside it):

    pip download pipecat-ai==1.14.0 --no-deps -d /tmp/pc && cd /tmp/pc && unzip -q pipecat_ai-*.whl
    python services/stt/tests/data/make_smart_turn_reference.py \\
        /tmp/pc/pipecat/audio/turn/smart_turn/_whisper_features.py

The recording is the local Piper voice saying "I'd like to book a table for" slowly (length
scale 1.3) and without sampling noise, as a speaker does who stops to think. The reference
features are Pipecat's own numbers for it: its file is loaded by path, numpy being its only
import, so neither Pipecat nor its dependencies are installed.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).parent
TEXT = "I'd like to book a table for"
WINDOW = 8 * 16_000


def _recording() -> np.ndarray:
    from piper import PiperVoice, SynthesisConfig

    from parley_tts.models import piper_voice_paths
    from parley_tts.resample import Resampler

    voice = PiperVoice.load(*piper_voice_paths())
    config = SynthesisConfig(length_scale=1.3, noise_scale=0.0, noise_w_scale=0.0)
    audio = np.concatenate([c.audio_float_array for c in voice.synthesize(TEXT, config)])
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    resampler = Resampler(voice.config.sample_rate, 16_000)
    return np.frombuffer(resampler.process(pcm) + resampler.flush(), dtype="<i2").copy()


def main(pipecat_features: str) -> None:
    """Write the recording and Pipecat's features of it."""
    spec = importlib.util.spec_from_file_location("pipecat_features", pipecat_features)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pcm = _recording()
    samples = pcm.astype(np.float32) / 32768.0
    # As Pipecat's LocalSmartTurnAnalyzerV3._predict_endpoint: zeros before, up to 8 s.
    window = np.pad(samples, (WINDOW - len(samples), 0))
    features = module.compute_whisper_log_mel_features(window, do_normalize=True)
    np.savez_compressed(HERE / "smart_turn_reference.npz", pcm=pcm, features=features)


if __name__ == "__main__":
    main(sys.argv[1])
