"""The serving app on a tiny random Llama (built once for this module): auth, limits, the answer
and its server-sent events, what is stored, feedback; and what `serve` refuses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from llm_assets.rag.index import RetrievedChunk
from llm_assets.serving.app import create_app
from llm_assets.serving.engine import EngineUnavailable, TransformersEngine, load_engine
from llm_assets.serving.guardrails import Guardrails
from llm_assets.serving.models import ServedModel, ServedModelNotFound, served_from_folder
from llm_assets.serving.server import ServeOptions, ServeRefused, serve_token
from llm_assets.serving.store import ExchangeStore, Redactor, exchanges, open_database
from llm_assets.settings import GenerationConfig, ServingConfig, TinyModelConfig
from llm_assets_tests.conftest import FEEDBACK_FIXTURE

TOKEN = "test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
QUESTION = {"role": "user", "content": "How do I restore a deleted file? Mail jo@example.com"}
CONTEXT_LENGTH = 192
# The scope guard's reply; no name in it, so the stored (redacted) answer is the same text.
REPLY = "Only questions about syncing, sorry."


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> ServedModel:
    from llm_assets.training.base_model import build_tiny_model, train_tokenizer

    folder = tmp_path_factory.mktemp("tiny-model")
    texts = ["Restore deleted files from the trash.", "Selective sync keeps folders local."] * 20
    tokenizer = train_tokenizer(texts, vocab_size=300)
    config = TinyModelConfig(
        vocab_size=300,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=CONTEXT_LENGTH,
    )
    build_tiny_model(tokenizer, config, seed=0).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return served_from_folder(folder, name="tiny")


@pytest.fixture(scope="module")
def engine(served: ServedModel) -> TransformersEngine:
    return TransformersEngine.load(served.model)


@pytest.fixture
def store(tmp_path: Path) -> ExchangeStore:
    redactor = Redactor(("EMAIL", "PHONE", "PERSON"))
    return ExchangeStore(open_database(f"sqlite:///{tmp_path / 'feedback.db'}"), redactor)


def _client(
    engine: TransformersEngine,
    served: ServedModel,
    store: ExchangeStore,
    token: str | None = TOKEN,
    retrieve: Any = None,
    system_prompt: str | None = None,
    guardrails: Guardrails | None = None,
    generation: GenerationConfig | None = None,
    **config: Any,
) -> TestClient:
    settings = ServingConfig(**{"max_tokens": 8, "default_max_tokens": 6, **config})
    app = create_app(
        engine,
        store,
        served,
        settings,
        generation or GenerationConfig(),
        token,
        retrieve,
        system_prompt,
        guardrails=guardrails,
    )
    return TestClient(app)


@pytest.fixture
def client(
    engine: TransformersEngine, served: ServedModel, store: ExchangeStore
) -> Iterator[TestClient]:
    with _client(engine, served, store) as test_client:
        yield test_client


def _stored(store: ExchangeStore) -> list[dict[str, Any]]:
    with store.engine.connect() as connection:
        return [dict(row) for row in connection.execute(sa.select(exchanges)).mappings()]


def _chat(client: TestClient, **body: Any) -> Any:
    return client.post("/v1/chat/completions", json={"messages": [QUESTION], **body}, headers=AUTH)


def test_api_needs_the_bearer_token_but_the_page_does_not(client: TestClient) -> None:
    missing = client.get("/v1/models")
    wrong = client.get("/v1/models", headers={"Authorization": "Bearer nope"})
    right = client.get("/v1/models", headers=AUTH)
    page = client.get("/")

    assert missing.status_code == wrong.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    assert "LLM_ASSETS_SERVE_TOKEN" in missing.json()["error"]["message"]
    assert client.post("/v1/chat/completions", json={"messages": [QUESTION]}).status_code == 401
    assert right.status_code == 200
    assert [model["id"] for model in right.json()["data"]] == ["tiny"]
    assert page.status_code == 200 and 'id="question"' in page.text
    assert "connect-src 'self'" in page.headers["content-security-policy"]
    assert "http://" not in page.text and "https://" not in page.text  # nothing external


def test_no_auth_app_answers_without_a_token(
    engine: TransformersEngine, served: ServedModel, store: ExchangeStore
) -> None:
    with _client(engine, served, store, token=None) as open_client:
        assert open_client.get("/v1/models").status_code == 200


def test_answer_is_capped_stored_redacted_and_named_by_its_id(
    client: TestClient, store: ExchangeStore
) -> None:
    response = _chat(client, max_tokens=10_000)

    body = response.json()
    assert response.status_code == 200
    assert body["object"] == "chat.completion"
    assert body["id"].startswith("chatcmpl-") and body["model"] == "tiny"
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert 1 <= body["usage"]["completion_tokens"] <= 8  # serving.max_tokens
    [row] = _stored(store)
    assert row["response_id"] == body["id"]
    assert row["messages"] == [
        {"role": "user", "content": "How do I restore a deleted file? Mail <EMAIL>"}
    ]
    assert row["completion_tokens"] == body["usage"]["completion_tokens"]
    assert row["prompt_tokens"] == body["usage"]["prompt_tokens"]
    assert row["latency_ms"] > 0 and row["stream"] is False


def test_stream_is_role_then_text_then_finish_usage_and_done(
    client: TestClient, store: ExchangeStore
) -> None:
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json={"messages": [QUESTION], "stream": True, "stream_options": {"include_usage": True}},
        headers=AUTH,
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = "".join(response.iter_text())

    events = [block.removeprefix("data: ") for block in raw.split("\n\n") if block]
    assert all(block.startswith("data: ") for block in raw.split("\n\n") if block)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(event) for event in events[:-1]]
    assert len({chunk["id"] for chunk in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant"}
    pieces = [c["choices"][0]["delta"]["content"] for c in chunks[1:-2]]
    assert pieces and all(pieces)
    assert chunks[-2]["choices"][0] == {"index": 0, "delta": {}, "finish_reason": "length"}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 6
    [row] = _stored(store)
    assert row["response_id"] == chunks[0]["id"] and row["stream"] is True
    assert row["answer"] == "".join(pieces).strip()
    assert row["first_token_ms"] is not None and row["first_token_ms"] <= row["latency_ms"]


def test_oversized_bodies_are_refused_with_413(client: TestClient) -> None:
    huge = {"messages": [{"role": "user", "content": "x" * 70_000}]}  # serving.max_request_kb: 64

    declared = client.post("/v1/chat/completions", json=huge, headers=AUTH)
    chunked = client.post(
        "/v1/chat/completions",
        content=(part for part in [json.dumps(huge).encode()[:40_000]] * 2),
        headers={**AUTH, "Content-Type": "application/json"},
    )

    assert declared.status_code == chunked.status_code == 413
    assert "serving.max_request_kb" in declared.json()["error"]["message"]
    assert "serving.max_request_kb" in chunked.json()["error"]["message"]


def test_conversations_past_the_limits_get_clear_errors(client: TestClient) -> None:
    too_many = _chat(client, messages=[QUESTION] * 40)
    wrong_model = _chat(client, model="gpt-4o")
    too_long = _chat(client, messages=[{"role": "user", "content": "restore " * 300}])
    bad_value = _chat(client, temperature=5)

    assert too_many.status_code == 400 and "serving.max_messages" in too_many.text
    assert wrong_model.status_code == 404
    assert wrong_model.json()["error"]["code"] == "model_not_found"
    assert too_long.status_code == 400
    assert too_long.json()["error"]["code"] == "context_length_exceeded"
    assert bad_value.status_code == 422 and "temperature" in bad_value.json()["error"]["message"]


def test_content_as_a_list_of_text_parts_answers_as_the_same_string_does(
    client: TestClient, store: ExchangeStore
) -> None:
    # What OpenAI's newer SDKs send; greedy decoding makes both answers comparable.
    parts = [{"type": "text", "text": QUESTION["content"]}]
    as_parts = _chat(client, messages=[{"role": "user", "content": parts}], temperature=0)
    as_string = _chat(client, temperature=0)
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    with_image = _chat(client, messages=[{"role": "user", "content": [*parts, image]}])

    assert as_parts.status_code == as_string.status_code == 200
    assert as_parts.json()["choices"] == as_string.json()["choices"]
    assert as_parts.json()["usage"] == as_string.json()["usage"]
    first, second = _stored(store)
    assert first["messages"] == second["messages"]
    assert with_image.status_code == 400
    error = with_image.json()["error"]
    assert error["code"] == "unsupported_content"
    assert "messages[0].content[1]" in error["message"] and "'image_url'" in error["message"]


def test_answer_near_the_context_end_is_shortened_to_fit(
    client: TestClient, engine: TransformersEngine
) -> None:
    content = QUESTION["content"]
    while (
        CONTEXT_LENGTH - len(engine.prepare([{"role": "user", "content": content}]).token_ids) > 4
    ):
        content += " ab"

    body = _chat(client, messages=[{"role": "user", "content": content}]).json()

    room = CONTEXT_LENGTH - body["usage"]["prompt_tokens"]
    assert 0 < room < 8  # serving.max_tokens here
    assert body["usage"]["completion_tokens"] <= room
    assert body["choices"][0]["finish_reason"] == "length"


def test_feedback_is_linked_to_an_answer_and_validated(
    client: TestClient, store: ExchangeStore
) -> None:
    answer_id = _chat(client).json()["id"]

    def send(**body: Any) -> Any:
        return client.post("/v1/feedback", json=body, headers=AUTH)

    stored = send(response_id=answer_id, thumbs="up", rating=5, comment="Call +1 415 555 0132")
    unknown = send(response_id="chatcmpl-unknown", thumbs="up")
    out_of_range = send(response_id=answer_id, rating=9)
    empty = send(response_id=answer_id)
    unauthenticated = client.post("/v1/feedback", json={"response_id": answer_id, "thumbs": "up"})

    assert stored.status_code == 201 and stored.json()["response_id"] == answer_id
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "response_not_found"
    assert out_of_range.status_code == empty.status_code == 422
    assert unauthenticated.status_code == 401
    with store.engine.connect() as connection:
        rows = connection.execute(sa.text("select comment, rating from serving_feedback")).all()
    assert rows == [("Call <PHONE>", 5)]


def test_rag_chunks_are_given_as_context_and_recorded(
    engine: TransformersEngine, served: ServedModel, store: ExchangeStore
) -> None:
    asked: list[str] = []

    def retrieve(question: str, k: int) -> list[RetrievedChunk]:
        asked.append(question)
        chunk = RetrievedChunk(
            "docs/trash#0", "trash", "docs", "trash.md", "", "Trash: 30 days.", 1
        )
        return [chunk]

    with _client(engine, served, store, retrieve=retrieve, rag_k=2) as rag_client:
        body = _chat(rag_client, max_tokens=1).json()

    assert asked == [QUESTION["content"]]
    assert body["rag_chunk_ids"] == ["docs/trash#0"]
    assert _stored(store)[-1]["rag_chunk_ids"] == ["docs/trash#0"]
    # The stored conversation is the user's; the context is found again from the chunk ids.
    assert [m["role"] for m in _stored(store)[-1]["messages"]] == ["user"]


def test_answers_with_context_are_decoded_context_aware_as_evaluation_decodes(
    engine: TransformersEngine, served: ServedModel, store: ExchangeStore
) -> None:
    """With evaluation.generation.context_contrast the served answer is the one evaluation's
    `generate_answers` gives the same grounded prompt and its closed-book twin."""
    from llm_assets.evaluation.generation import closed_book_texts, generate_answers, prompt_texts
    from llm_assets.rag.context import grounded_messages, with_system_prompt

    chunk = RetrievedChunk("docs/trash#0", "trash", "docs", "trash.md", "", "Trash: 30 days.", 1)
    generation = GenerationConfig(context_contrast=1.0)
    with _client(
        engine, served, store, retrieve=lambda question, k: [chunk], generation=generation
    ) as rag_client:
        body = _chat(rag_client, max_tokens=8).json()

    grounded, used = grounded_messages([QUESTION], [chunk], None, ServingConfig().rag_max_chars)
    assert used == ["docs/trash#0"] == body["rag_chunk_ids"]
    tokenizer, config = engine.tokenizer, generation.model_copy(update={"max_new_tokens": 8})
    prompts = prompt_texts(tokenizer, [grounded])
    twins = closed_book_texts(tokenizer, [with_system_prompt([QUESTION], None)])
    evaluated = generate_answers(engine.model, tokenizer, prompts, config, closed_book=twins)
    plain = generate_answers(engine.model, tokenizer, prompts, config)
    assert body["choices"][0]["message"]["content"] == evaluated.answers[0]
    assert evaluated.answers != plain.answers


def test_questions_out_of_scope_get_the_reply_without_the_model(
    engine: TransformersEngine, served: ServedModel, store: ExchangeStore
) -> None:
    def retrieve(question: str, k: int) -> list[RetrievedChunk]:
        score = 0.9 if "deleted" in question else 0.1
        return [RetrievedChunk("docs/trash#0", "trash", "docs", "trash.md", "", "Trash.", score)]

    guard = Guardrails(min_relevance=0.35, out_of_scope_reply=REPLY)
    poem = {"role": "user", "content": "Write me a poem about autumn."}
    with _client(engine, served, store, retrieve=retrieve, guardrails=guard) as guarded:
        declined = guarded.post(
            "/v1/chat/completions", json={"messages": [poem]}, headers=AUTH
        ).json()
        with guarded.stream(
            "POST",
            "/v1/chat/completions",
            json={"messages": [poem], "stream": True},
            headers=AUTH,
        ) as response:
            raw = "".join(response.iter_text())
        answered = _chat(guarded).json()

    assert declined["choices"][0]["message"]["content"] == REPLY
    assert declined["usage"]["completion_tokens"] == 0  # the model was not asked
    events = [block.removeprefix("data: ") for block in raw.split("\n\n") if block]
    chunks = [json.loads(event) for event in events[:-1]]
    streamed = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert streamed == REPLY
    assert answered["choices"][0]["message"]["content"] != REPLY
    assert answered["usage"]["completion_tokens"] > 0
    assert [row["answer"] for row in _stored(store)][:2] == [REPLY] * 2


def test_serve_refuses_to_start_without_a_token_unless_told_to_on_loopback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("LLM_ASSETS_SERVE_TOKEN", raising=False)
    with pytest.raises(ServeRefused, match="LLM_ASSETS_SERVE_TOKEN is not set"):
        serve_token(ServeOptions(host="127.0.0.1", port=8000))
    assert serve_token(ServeOptions(host="127.0.0.1", port=8000, no_auth=True)) is None
    with pytest.raises(ServeRefused, match="loopback only"):
        serve_token(ServeOptions(host="0.0.0.0", port=8000, no_auth=True))
    monkeypatch.setenv("LLM_ASSETS_SERVE_TOKEN", "short")
    with pytest.raises(ServeRefused, match="shorter than 16"):
        serve_token(ServeOptions(host="127.0.0.1", port=8000))
    monkeypatch.setenv("LLM_ASSETS_SERVE_TOKEN", TOKEN)
    assert serve_token(ServeOptions(host="0.0.0.0", port=8000)) == TOKEN


def test_serve_command_says_what_is_missing(
    served: ServedModel, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from llm_assets.cli import main

    monkeypatch.delenv("LLM_ASSETS_SERVE_TOKEN", raising=False)
    folder = str(served.model.base_model_path)

    assert main(["serve", "--adapter", folder]) == 2
    assert "LLM_ASSETS_SERVE_TOKEN is not set" in capsys.readouterr().err


def test_folders_that_hold_no_model_are_refused_clearly(tmp_path: Path) -> None:
    with pytest.raises(ServedModelNotFound, match="neither adapter_config.json"):
        served_from_folder(tmp_path)
    (tmp_path / "adapter_config.json").write_text(
        json.dumps({"base_model_name_or_path": "/nowhere/base", "peft_type": "LORA"})
    )
    with pytest.raises(ServedModelNotFound, match="/nowhere/base"):
        served_from_folder(tmp_path)


def test_vllm_engine_says_how_to_get_vllm_when_it_is_missing(served: ServedModel) -> None:
    import importlib.util

    from llm_assets.serving.vllm_server import VllmServerEngine

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    with pytest.raises(EngineUnavailable, match="VllmServerEngine.start"):
        load_engine("vllm", served.model)
    with pytest.raises(EngineUnavailable, match="pip install vllm"):
        VllmServerEngine.start(served.model, repetition_penalty=1.0)


def test_a_request_without_system_message_gets_the_training_system_prompt(
    engine: TransformersEngine, served: ServedModel, store: ExchangeStore
) -> None:
    from llm_assets.datasets.chat_template import render_chat

    system = {"role": "system", "content": "You are the support assistant for our product."}
    with _client(engine, served, store, system_prompt=system["content"]) as client:
        implicit = _chat(client).json()["usage"]["prompt_tokens"]
        explicit = client.post(
            "/v1/chat/completions", json={"messages": [system, QUESTION]}, headers=AUTH
        ).json()["usage"]["prompt_tokens"]
    with _client(engine, served, store) as client:
        bare = _chat(client).json()["usage"]["prompt_tokens"]
    rendered = render_chat(engine.tokenizer, [system, QUESTION], for_generation=True)
    assert (
        implicit
        == explicit
        == len(engine.tokenizer(rendered, add_special_tokens=False)["input_ids"])
    )
    assert bare < implicit
    # What is stored is what the user sent, not the added system turn.
    assert all(row["messages"][0]["role"] == "user" for row in _stored(store)[:1])


def test_a_model_trained_with_retrieval_is_served_with_it(tmp_path: Path) -> None:
    from llm_assets.evaluation.generation import ModelUnderTest
    from llm_assets.rag.context import ContextFormat, write_context_format
    from llm_assets.serving.server import served_retrieval
    from llm_assets.settings import Profile

    profile = Profile.model_validate(
        {"sources": [{"name": "docs", "kind": "documents", "path": "docs/*.md"}]}
    )
    options = ServeOptions(host="127.0.0.1", port=8000)
    closed_book = ServedModel(ModelUnderTest("served", "base", str(tmp_path)), "m", "1", "x")
    assert served_retrieval(profile, options, closed_book) == (False, None)
    assert served_retrieval(profile, ServeOptions("127.0.0.1", 8000, rag=True), closed_book) == (
        True,
        None,
    )
    write_context_format(tmp_path, ContextFormat(3, 900))
    assert served_retrieval(profile, options, closed_book) == (True, ContextFormat(3, 900))


def test_the_sample_feedback_reaches_preference_data_through_the_api(
    client: TestClient, store: ExchangeStore
) -> None:
    """Every judged exchange of the shipped fixture, asked and judged through the API as a user
    would, ends up as KTO rows, a DPO pair or a ledger reason, as its verdict says."""
    from datetime import UTC, datetime

    from llm_assets.datasets.preferences import judgement, preference_data
    from llm_assets.serving.store import read_feedback
    from llm_assets.settings import ConversationTemplate
    from llm_assets.sources.feedback import Exchange, latest_per_response

    fixture = [json.loads(line) for line in FEEDBACK_FIXTURE.read_text().splitlines()]
    judged: dict[str, str] = {}
    for row in fixture:
        answer = client.post(
            "/v1/chat/completions", json={"messages": row["messages"]}, headers=AUTH
        ).json()
        verdict = {k: row[k] for k in ("thumbs", "rating", "comment", "corrected_answer")}
        sent = {k: v for k, v in verdict.items() if v is not None}
        body = {"response_id": answer["id"], **sent}
        given = client.post("/v1/feedback", json=body, headers=AUTH)
        assert given.status_code == 201, given.text
        judged[answer["id"]] = judgement(Exchange.from_mapping(row), 4)

    rows = read_feedback(store.engine, datetime(2000, 1, 1, tzinfo=UTC), datetime.now(UTC))
    served = latest_per_response(rows)
    data = preference_data(served, 4, "2026-10-01", ConversationTemplate(), "Support.")
    ledger = data.ledger.set_index("response_id")
    assert sorted(ledger.index) == sorted(judged)
    assert {judgement(exchange, 4) for exchange in served} == set(judged.values())
    for exchange in served:
        verdict, entry = judgement(exchange, 4), ledger.loc[exchange.response_id]
        assert verdict == judged[exchange.response_id]
        if verdict.startswith("preference."):  # neutral ratings: nothing learned, reason kept
            assert entry["reason"] == verdict and entry["unpaired_rows"] == entry["pairs"] == 0
        elif entry["reason"] != "preference.duplicate":
            assert entry["unpaired_rows"] >= 1
            assert entry["pairs"] == (1 if verdict == "corrected" else 0)
    assert ledger["unpaired_rows"].sum() == len(data.unpaired)
    assert ledger["pairs"].sum() == len(data.paired) > 0
    assert (data.unpaired["label"] == True).sum() > 0  # noqa: E712 (corrections are the good side)
