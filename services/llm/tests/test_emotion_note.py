"""What the model is told about the user's tone: one system-prompt line for the latest user
turn when it is not neutral, nothing otherwise (sessions without ``detect_emotion`` carry no
emotion at all)."""

from __future__ import annotations

import uuid

import asyncpg

from parley_common.contracts.bus import Emotion, EmotionLabel
from parley_llm.memory import ConversationMemory


def _emotion(name: EmotionLabel) -> Emotion:
    return Emotion(label=name, scores={name: 1.0}, valence=0.0, arousal=0.0)


def _system(memory: ConversationMemory) -> str:
    return memory.messages()[0].content


async def test_the_model_hears_the_tone_of_the_turn_it_answers(pool: asyncpg.Pool) -> None:
    memory = ConversationMemory(pool, str(uuid.uuid4()), None)
    memory.add_user(1, "It still does not work.", emotion=_emotion(EmotionLabel.FRUSTRATED))
    assert "sounded frustrated" in _system(memory)
    memory.add_assistant(1, "Sorry about that, let us fix it.", False)
    # The answer is given: the next prompt is about the next turn, not this one.
    assert "sounded" not in _system(memory)
    memory.add_user(2, "Thanks.", emotion=_emotion(EmotionLabel.NEUTRAL))
    assert "sounded" not in _system(memory)
    memory.add_user(3, "Great!", emotion=_emotion(EmotionLabel.EXCITED))
    system = _system(memory)
    assert system.count("sounded") == 1
    assert "sounded excited" in system
    memory.add_user(4, "Typed, or no detection.")
    assert "sounded" not in _system(memory)
