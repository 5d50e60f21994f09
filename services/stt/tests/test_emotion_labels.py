"""Emotion labels on spoken utterances: sentences spoken by the local Piper voice, made
animated (higher, faster, louder) or subdued (lower, slower, quieter) by ``bench.prosody``,
are labelled as expected in at least 80 % of a labelled set.
Several sentences appear with two voices and two labels: the voice, not only the words,
decides them."""

from __future__ import annotations

import asyncio
from collections import Counter

from bench.audio import speak
from bench.prosody import in_voice
from parley_common.contracts.bus import EmotionLabel
from parley_stt.emotion import EmotionDetector

# What the session heard from its user before, in their usual voice.
WARM_UP = (
    "I would like to ask you about something.",
    "Let me tell you about my day at work.",
    "Remind me to call my sister after lunch.",
)
N, H, X, F, A, S = (
    EmotionLabel.NEUTRAL,
    EmotionLabel.HAPPY,
    EmotionLabel.EXCITED,
    EmotionLabel.FRUSTRATED,
    EmotionLabel.ANGRY,
    EmotionLabel.SAD,
)
WONDERFUL = "This is wonderful, thank you so much."
STILL_BROKEN = "This still does not work, I have tried it three times."
LABELLED = [
    ("The meeting is on Tuesday at noon.", "calm", N),
    ("What is the capital of France?", "calm", N),
    ("Send the report to my manager by Friday.", "animated", N),
    ("My flight leaves from gate twelve.", "subdued", N),
    (WONDERFUL, "calm", H),
    ("That sounds great, thanks.", "calm", H),
    ("I really like this new song.", "calm", H),
    (WONDERFUL, "animated", X),
    ("I got the job, this is the best day ever!", "animated", X),
    ("We won the game, that is fantastic!", "animated", X),
    (STILL_BROKEN, "calm", F),
    ("Why does it never work? I am fed up.", "calm", F),
    ("The app keeps crashing, how many times do I have to ask?", "calm", F),
    (STILL_BROKEN, "animated", A),
    ("This is terrible, I hate this stupid thing!", "animated", A),
    ("I am furious, this is the worst service ever.", "animated", A),
    ("I am so tired and sad, my dog died yesterday.", "subdued", S),
    ("I feel lonely and nothing matters anymore.", "subdued", S),
    ("I miss her so much.", "subdued", S),
]


async def label_of(text: str, voice: str) -> EmotionLabel:
    """The label a fresh session gives ``text`` spoken in ``voice``, after the warm-up."""
    detector = EmotionDetector()
    for sentence in WARM_UP:
        await detector.judge(await speak(sentence), sentence)
    emotion = await detector.judge(in_voice(await speak(text), voice), text)
    assert emotion is not None
    return emotion.label


async def test_spoken_utterances_get_their_labels() -> None:
    got = await asyncio.gather(*(label_of(text, voice) for text, voice, _ in LABELLED))
    confusion = Counter((want, label) for (_, _, want), label in zip(LABELLED, got, strict=True))
    names = list(EmotionLabel)
    print("\nexpected \\ got  " + " ".join(f"{n.value[:5]:>5}" for n in names))
    for want in names:
        row = " ".join(f"{confusion[(want, g)]:>5}" for g in names)
        print(f"{want.value:<15} {row}")
    for (text, voice, want), label in zip(LABELLED, got, strict=True):
        if label is not want:
            print(f"miss: {text!r} ({voice}) expected {want.value}, got {label.value}")
    rate = sum(confusion[(n, n)] for n in names) / len(LABELLED)
    print(f"accuracy {rate:.0%} of {len(LABELLED)}")
    assert rate >= 0.8
    # Every label is reached: a detector stuck on a few of them fails too.
    assert {label for label in got} == set(names)
