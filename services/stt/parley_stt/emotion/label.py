"""From valence (the words) and arousal (the voice) to a label: the nearest of six
prototypes in the valence-arousal plane (Russell's circumplex), with a score for each."""

from __future__ import annotations

import math

from parley_common.contracts.bus import Emotion, EmotionLabel

# Where each tone sits: (valence, arousal).
PROTOTYPES: dict[EmotionLabel, tuple[float, float]] = {
    EmotionLabel.NEUTRAL: (0.0, 0.0),
    EmotionLabel.HAPPY: (0.6, 0.0),
    EmotionLabel.EXCITED: (0.6, 0.7),
    EmotionLabel.FRUSTRATED: (-0.45, 0.1),
    EmotionLabel.ANGRY: (-0.6, 0.75),
    EmotionLabel.SAD: (-0.55, -0.6),
}
# The words say more about valence than the voice about arousal: a neutral sentence said
# loudly stays neutral rather than becoming angry or excited.
VALENCE_WEIGHT = 3.0
# Softmax temperature over squared distances: a turn halfway between two tones scores
# them about evenly, one on a prototype gets most of the mass.
TEMPERATURE = 0.1


def label(valence: float, arousal: float) -> Emotion:
    """The tone of a turn whose words have ``valence`` and whose voice has ``arousal``
    (both from -1 to 1)."""
    valence = max(-1.0, min(1.0, valence))
    arousal = max(-1.0, min(1.0, arousal))
    distance = {
        name: VALENCE_WEIGHT * (valence - v) ** 2 + (arousal - a) ** 2
        for name, (v, a) in PROTOTYPES.items()
    }
    nearest = min(distance.values())
    weights = {name: math.exp(-(d - nearest) / TEMPERATURE) for name, d in distance.items()}
    total = sum(weights.values())
    scores = {name: round(w / total, 4) for name, w in weights.items()}
    best = min(distance, key=distance.__getitem__)
    return Emotion(label=best, scores=scores, valence=round(valence, 4), arousal=round(arousal, 4))
