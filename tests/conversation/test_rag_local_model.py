"""The offline default answers from the knowledge base: the passages retrieved for each
question (the right document first) are put in the prompt as a session does, and the real
local model's answer states the fact that only they hold. One model load, short answers."""

from __future__ import annotations

import asyncpg
import pytest

from parley_common.knowledge import KnowledgeIndexer, KnowledgeStore
from parley_common.knowledge.embedder import local_embedder
from parley_llm.knowledge import DEFAULT_MIN_SCORE, DEFAULT_TOP_K, augmented_question
from parley_llm.memory import DEFAULT_SYSTEM_PROMPT
from parley_llm.models import QUALITY
from parley_llm.providers.base import ChatMessage
from parley_llm.providers.llama_local import LocalLlamaProvider
from tests.conversation.knowledge_docs import QUESTIONS, index_chatbots

MAX_TOKENS = 48


@pytest.mark.models
@pytest.mark.slow
async def test_the_local_model_answers_with_the_facts_of_the_passages(
    pool: asyncpg.Pool,
) -> None:
    embedder = local_embedder()
    store = KnowledgeStore(pool)
    indexer = KnowledgeIndexer(store, embedder)
    # Alice's chatbot and bob's rival notes, which answer the same questions differently.
    chatbot, _ = await index_chatbots(indexer)
    provider = LocalLlamaProvider(QUALITY)
    results = []
    for question in QUESTIONS:
        vector = (await embedder.embed([question.text]))[0]
        passages = await store.search(chatbot, "alice", vector, DEFAULT_TOP_K, DEFAULT_MIN_SCORE)
        assert passages[0].filename == question.filename, (question, passages)
        assert all(p.filename != "rival.txt" for p in passages)
        messages = [
            ChatMessage("system", DEFAULT_SYSTEM_PROMPT),
            ChatMessage("user", augmented_question(question.text, passages)),
        ]
        answer = "".join([d async for d in provider.stream(messages, MAX_TOKENS)]).strip()
        results.append((question, answer))
    report = "\n".join(f"{q.text} -> {a!r}" for q, a in results)
    print(report)
    assert all(q.fact.lower() in a.lower() for q, a in results), report
