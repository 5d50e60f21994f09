"""What the assistant is told about the tone of the user's turn (session option
``detect_emotion``): one short line of the system prompt, only when the tone is not neutral."""

from __future__ import annotations

from parley_common.contracts.bus import Emotion, EmotionLabel


def emotion_note(emotion: Emotion | None) -> str | None:
    """The system prompt's line about ``emotion``; None when there is nothing to say."""
    if emotion is None or emotion.label is EmotionLabel.NEUTRAL:
        return None
    return (
        f"The user's last message sounded {emotion.label.value} (from their words and their "
        "voice). Let that shape your tone; do not mention that you can tell."
    )
