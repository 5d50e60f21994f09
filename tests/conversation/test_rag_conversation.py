"""Conversations that answer from a chatbot's knowledge base, end to end through a gateway
that requires tokens: the three documents are uploaded over HTTP, questions are typed in a
session with ``use_rag``, and

- the emulated cloud models (OpenAI, Anthropic, through their official SDKs) receive a prompt
  holding the passage that answers, and never the rival chatbot's;
- on the offline path (the scripted model in place of the local one, retrieval real) the
  passages chosen answer each question, and the transcript API returns them as sources;
- another chatbot's documents, or this chatbot's for another user, are never retrieved;
- without ``use_rag`` nothing is retrieved, and a chatbot's voice config can turn it on;
- a spoken question is searched while it is said, from its partial transcript;
- S2's ``/api/v1/voice/chat`` answers from the documents with its ``use_rag`` flag.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from bench.audio import silence, speak
from bench.call import Call
from conftest import SecuredPlatform
from parley_common.testing import eventually
from parley_emulators.base import running
from parley_emulators.vendors import Anthropic, OpenAi
from parley_llm.knowledge import RETRIEVAL_SECONDS
from parley_llm.providers.registry import REGISTRY as LLM_PROVIDERS
from parley_llm.providers.scripted import ScriptedLlmProvider
from parley_stt.providers.scripted import ScriptedSttProvider
from tests.conversation.conftest import SCRIPTED, vendors_at
from tests.conversation.knowledge_docs import DOCUMENTS, QUESTIONS, RIVAL_TXT, Question
from tests.conversation.s2_audio import recording
from tests.conversation.test_traces import spans  # noqa: F401  # a fixture: every span, in memory

KEY = "test-key"
# Users of this module alone: their open sessions count towards no other module's cap.
ALICE, BOB = f"alice-{uuid.uuid4().hex[:8]}", f"bob-{uuid.uuid4().hex[:8]}"
REPLY = "Here is what the handbook says."
RIVAL_FACTS = ("Bartholomew", "0000-Z", "11 in the morning")


@dataclass(frozen=True)
class Knowledge:
    platform: SecuredPlatform
    chatbot: str  # alice's, with the three documents
    rival: str  # bob's, with the rival notes
    documents: dict[str, str]  # alice's document ids by file name
    rival_document: str


@dataclass(frozen=True)
class Cloud:
    openai: OpenAi
    anthropic: Anthropic


@pytest.fixture(scope="module")
async def cloud(monkeymodule: pytest.MonkeyPatch) -> AsyncIterator[Cloud]:
    vendors = Cloud(OpenAi(api_key=KEY, reply=REPLY), Anthropic(api_key=KEY, reply=REPLY))
    async with running(vendors.openai.app()) as openai, running(vendors.anthropic.app()) as claude:
        urls = {"openai": f"{openai}/v1", "anthropic": claude}
        async with vendors_at(monkeymodule, KEY, urls, [LLM_PROVIDERS]):
            yield vendors


async def _upload(
    http: httpx.AsyncClient, headers: dict[str, str], chatbot: str, name: str, data: bytes
) -> str:
    response = await http.post(
        f"/api/v1/chatbots/{chatbot}/documents", files={"file": (name, data)}, headers=headers
    )
    assert response.status_code == 201, response.text
    document: str = response.json()["id"]
    return document


@pytest.fixture(scope="module")
async def knowledge(secured_platform: SecuredPlatform) -> Knowledge:
    alice, bob = secured_platform.headers(ALICE), secured_platform.headers(BOB)
    chatbot, rival = f"bot-{uuid.uuid4()}", f"bot-{uuid.uuid4()}"
    async with httpx.AsyncClient(base_url=secured_platform.url, timeout=60) as http:
        documents = {
            d.filename: await _upload(http, alice, chatbot, d.filename, d.data) for d in DOCUMENTS
        }
        rival_document = await _upload(http, bob, rival, "rival.txt", RIVAL_TXT)
    return Knowledge(secured_platform, chatbot, rival, documents, rival_document)


@dataclass
class Answered:
    session_id: str
    turns: list[int]


async def _ask(
    platform: SecuredPlatform, user: str, questions: list[str], **config: Any
) -> Answered:
    """A session of ``user`` where each question is typed and answered to its end."""
    call = await Call.start(platform.url, token=platform.token(user), **{**SCRIPTED, **config})
    turns = []
    try:
        for question in questions:
            after = len(call.log)
            await call.send_json({"type": "text_message", "text": question})
            done = await call.wait_for(
                "response", lambda e: e["data"]["done"], within_s=30, after=after
            )
            turns.append(done["data"]["turn_id"])
    finally:
        await call.close()
    return Answered(call.session_id, turns)


async def _sources(platform: SecuredPlatform, user: str, answered: Answered) -> list[list[Any]]:
    """Each answered turn's sources from the transcript API (rows are written behind)."""
    async with httpx.AsyncClient(base_url=platform.url, headers=platform.headers(user)) as http:
        for _ in range(50):
            response = await http.get(f"/api/v1/sessions/{answered.session_id}/transcript")
            assert response.status_code == 200
            entries = [e for e in response.json()["entries"] if e["role"] == "assistant"]
            if len(entries) == len(answered.turns):
                return [e["sources"] for e in entries]
            await asyncio.sleep(0.1)
    raise AssertionError("the answers were not stored")


def _check_sources(knowledge: Knowledge, sources: list[Any], question: Question) -> None:
    assert sources, question
    assert sources[0]["filename"] == question.filename, (question, sources)
    assert sources[0]["document_id"] == knowledge.documents[question.filename]
    assert all(s["document_id"] in knowledge.documents.values() for s in sources)
    assert [s["score"] for s in sources] == sorted((s["score"] for s in sources), reverse=True)


def _last_user_text(body: dict[str, Any]) -> str:
    """The latest user message of a chat request (OpenAI or Anthropic), as text."""
    message = [m for m in body["messages"] if m["role"] == "user"][-1]
    content = message["content"]
    if isinstance(content, str):
        return content
    return " ".join(block.get("text", "") for block in content)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_the_cloud_models_prompt_holds_the_passages_that_answer(
    knowledge: Knowledge, cloud: Cloud, provider: str
) -> None:
    state = cloud.openai.chat if provider == "openai" else cloud.anthropic.messages
    path = "chat/completions" if provider == "openai" else "messages"
    prompts = []
    answered = await _ask(
        knowledge.platform,
        ALICE,
        [q.text for q in QUESTIONS],
        llm_provider=provider,
        chatbot_id=knowledge.chatbot,
        use_rag=True,
    )
    for question in QUESTIONS:
        # Each turn's request is the one whose latest user message asks that question.
        requests = [r.body for r in state.requests if path in r.path]
        body = next(b for b in reversed(requests) if question.text in _last_user_text(b))
        prompt = _last_user_text(body)
        prompts.append(prompt)
        assert question.fact in prompt, (question, prompt)
        assert not any(fact in prompt for fact in RIVAL_FACTS), prompt
        # The passages are in the turn's message, not in the system prompt.
        system = [m for m in body["messages"] if m["role"] == "system"], body.get("system")
        assert question.fact not in json.dumps(system)
    for sources, question in zip(
        await _sources(knowledge.platform, ALICE, answered), QUESTIONS, strict=True
    ):
        _check_sources(knowledge, sources, question)
    # The question closes the turn's message; earlier turns are sent as they were said.
    assert all(p.endswith(f"Question: {q.text}") for p, q in zip(prompts, QUESTIONS, strict=True))
    last = [r.body for r in state.requests if path in r.path][-1]
    earlier = [m for m in last["messages"] if m["role"] == "user"][:-1]
    assert [_last_user_text({"messages": [m]}) for m in earlier] == [q.text for q in QUESTIONS[:-1]]


async def test_the_offline_path_chooses_the_passages_that_answer_each_question(
    knowledge: Knowledge, scripted_llm: ScriptedLlmProvider
) -> None:
    before = len(scripted_llm.runs)
    answered = await _ask(
        knowledge.platform,
        ALICE,
        [q.text for q in QUESTIONS],
        chatbot_id=knowledge.chatbot,
        use_rag=True,
    )
    runs = scripted_llm.runs[before:]
    assert len(runs) == len(QUESTIONS)
    for run, question in zip(runs, QUESTIONS, strict=True):
        latest = run.messages[-1]
        assert latest.role == "user"
        assert question.fact in latest.content
        assert latest.content.endswith(question.text)
        # Earlier turns reach the model as they were said, without their passages.
        assert all("Passages from the knowledge base" not in m.content for m in run.messages[:-1])
    for sources, question in zip(
        await _sources(knowledge.platform, ALICE, answered), QUESTIONS, strict=True
    ):
        _check_sources(knowledge, sources, question)


async def test_another_chatbots_documents_are_never_retrieved(
    knowledge: Knowledge, scripted_llm: ScriptedLlmProvider
) -> None:
    questions = [q.text for q in QUESTIONS]
    # Bob's chatbot answers from bob's notes only.
    before = len(scripted_llm.runs)
    bobs = await _ask(knowledge.platform, BOB, questions, chatbot_id=knowledge.rival, use_rag=True)
    found = await _sources(knowledge.platform, BOB, bobs)
    # His notes speak of the bakery's hours, starter and garage, not of travel.
    assert [[s["document_id"] for s in sources] for sources in found] == [
        [knowledge.rival_document]
    ] * 3 + [[]]
    for run in scripted_llm.runs[before : before + 3]:
        assert "Bartholomew" in run.messages[-1].content
        assert not any(q.fact in run.messages[-1].content for q in QUESTIONS)
    # Bob naming alice's chatbot finds no such chatbot: no session, none of her documents.
    platform = knowledge.platform
    async with httpx.AsyncClient(base_url=platform.url, headers=platform.headers(BOB)) as http:
        crossing = await http.post(
            "/api/v1/sessions", json={**SCRIPTED, "chatbot_id": knowledge.chatbot, "use_rag": True}
        )
    assert crossing.status_code == 404, crossing.text
    assert crossing.json()["error"]["code"] == "chatbot_not_found"


async def test_without_use_rag_nothing_is_retrieved_and_a_chatbot_can_turn_it_on(
    knowledge: Knowledge, scripted_llm: ScriptedLlmProvider
) -> None:
    question = QUESTIONS[2]
    before = len(scripted_llm.runs)
    plain = await _ask(knowledge.platform, ALICE, [question.text], chatbot_id=knowledge.chatbot)
    assert scripted_llm.runs[before].messages[-1].content == question.text
    assert await _sources(knowledge.platform, ALICE, plain) == [[]]

    # A chatbot whose voice config sets use_rag: its sessions retrieve without asking.
    platform, alice = knowledge.platform, knowledge.platform.headers(ALICE)
    chatbot = f"bot-{uuid.uuid4()}"
    doc = next(d for d in DOCUMENTS if d.filename == question.filename)
    async with httpx.AsyncClient(base_url=platform.url, timeout=60) as http:
        document = await _upload(http, alice, chatbot, doc.filename, doc.data)
        stored = await http.put(
            f"/api/v1/voice/config/{chatbot}", json={"use_rag": True}, headers=alice
        )
        assert stored.status_code == 200
        assert stored.json()["use_rag"] is True
    before = len(scripted_llm.runs)
    defaulted = await _ask(platform, ALICE, [question.text], chatbot_id=chatbot)
    assert question.fact in scripted_llm.runs[before].messages[-1].content
    [sources] = await _sources(platform, ALICE, defaulted)
    assert sources[0]["document_id"] == document
    # The session's own choice wins over the chatbot's.
    before = len(scripted_llm.runs)
    await _ask(platform, ALICE, [question.text], chatbot_id=chatbot, use_rag=False)
    assert scripted_llm.runs[before].messages[-1].content == question.text


async def test_retrieval_is_a_span_of_the_turn_and_a_metric(
    knowledge: Knowledge, request: pytest.FixtureRequest
) -> None:
    exporter: InMemorySpanExporter = request.getfixturevalue("spans")

    def count() -> float:
        [metric] = RETRIEVAL_SECONDS.collect()
        return float(next(s.value for s in metric.samples if s.name.endswith("_count")))

    before = count()
    answered = await _ask(
        knowledge.platform,
        ALICE,
        [QUESTIONS[0].text],
        chatbot_id=knowledge.chatbot,
        use_rag=True,
    )
    assert count() == before + 1

    def retrieval() -> ReadableSpan | None:
        finished = exporter.get_finished_spans()
        roots = {
            s.context.trace_id
            for s in finished
            if s.name == "turn"
            and (s.attributes or {}).get("parley.session_id") == answered.session_id
        }
        return next(
            (s for s in finished if s.name == "knowledge.retrieve" and s.context.trace_id in roots),
            None,
        )

    await eventually(lambda: retrieval() is not None)
    span = retrieval()
    assert span is not None
    assert (span.attributes or {}).get("parley.knowledge.passages") == 4


async def test_a_spoken_question_is_searched_while_it_is_said(
    knowledge: Knowledge, scripted_llm: ScriptedLlmProvider, scripted_stt: ScriptedSttProvider
) -> None:
    def prefetched() -> float:
        labels = {"outcome": "prefetched"}
        return REGISTRY.get_sample_value("parley_llm_retrievals_total", labels) or 0

    question = QUESTIONS[0]
    # The scripted STT hears the question, in its partials (one a second of speech) as in
    # its final.
    scripted_stt.script = [question.text]
    platform = knowledge.platform
    before, runs = prefetched(), len(scripted_llm.runs)
    call = await Call.start(
        platform.url,
        token=platform.token(ALICE),
        **SCRIPTED,
        chatbot_id=knowledge.chatbot,
        use_rag=True,
    )
    try:
        await call.say(await speak(question.text) + silence(1200), realtime=False)
        done = await call.wait_for("response", lambda e: e["data"]["done"], within_s=30)
    finally:
        await call.close()
    assert prefetched() == before + 1
    assert question.fact in scripted_llm.runs[runs].messages[-1].content
    [sources] = await _sources(
        platform, ALICE, Answered(call.session_id, [done["data"]["turn_id"]])
    )
    _check_sources(knowledge, sources, question)


@pytest.mark.parametrize("how", ["form", "voice_config"])
async def test_s2_voice_chat_answers_from_the_documents_with_use_rag(
    knowledge: Knowledge,
    scripted_llm: ScriptedLlmProvider,
    scripted_stt: ScriptedSttProvider,
    how: str,
) -> None:
    question = QUESTIONS[2]
    scripted_stt.script = [question.text]
    # A user and chatbot of their own: every conversation stays open, and counts.
    user, chatbot = f"carol-{uuid.uuid4().hex[:8]}", f"bot-{uuid.uuid4()}"
    options: dict[str, Any] = {**SCRIPTED}
    data = {"chatbot_id": chatbot}
    if how == "form":
        data["use_rag"] = "true"
    else:
        options["use_rag"] = True
    data["voice_config"] = json.dumps(options)
    audio = recording(await speak(question.text), "wav", "pcm_s16le")
    platform = knowledge.platform
    before = len(scripted_llm.runs)
    async with httpx.AsyncClient(
        base_url=platform.url, headers=platform.headers(user), timeout=60
    ) as http:
        doc = next(d for d in DOCUMENTS if d.filename == question.filename)
        document = await _upload(http, platform.headers(user), chatbot, doc.filename, doc.data)
        reply = await http.post(
            "/api/v1/voice/chat",
            files={"audio_file": ("question.wav", audio, "audio/wav")},
            data=data,
        )
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["transcript"] == question.text
    assert question.fact in scripted_llm.runs[before].messages[-1].content
    answered = Answered(body["conversation_id"], [body["turn_id"]])
    [sources] = await _sources(platform, user, answered)
    assert sources
    assert {s["document_id"] for s in sources} == {document}
    assert sources[0]["filename"] == question.filename
