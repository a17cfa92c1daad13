"""Serving the session graph's champion: found in its MLflow registry, loaded with the tokenizer
saved at training, answering through the OpenAI API with the graph's rag_index as context,
storing every exchange and the feedback the quarterly loop reads."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from llm_assets.rag.index import RetrievedChunk
from llm_assets.rag.retrieval import MANIFEST_NAME, retrieve
from llm_assets.serving.app import create_app
from llm_assets.serving.engine import TransformersEngine
from llm_assets.serving.models import ServedModel, ServedModelNotFound, served_from_registry
from llm_assets.serving.server import ServeOptions, resolve_served_model
from llm_assets.serving.store import ExchangeStore, Redactor, open_database, read_feedback

from .conftest import MaterializedGraph

pytestmark = pytest.mark.slow

TOKEN = "integration-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
QUESTION = "How do I choose which folders stay on this computer? I'm at ann.lee@example.com"


@pytest.fixture(scope="module")
def champion(graph: MaterializedGraph) -> ServedModel:
    tracking = graph.defs.resources["mlflow"].tracking()
    return served_from_registry(tracking, graph.profile.use_case.registered_model_name)


@pytest.fixture(scope="module")
def engine(champion: ServedModel) -> TransformersEngine:
    return TransformersEngine.load(champion.model)


@pytest.fixture
def store(graph: MaterializedGraph, tmp_path: Path) -> ExchangeStore:
    database = open_database(f"sqlite:///{tmp_path / 'feedback.db'}")
    return ExchangeStore(database, Redactor.from_cleaning(graph.profile.cleaning))


@pytest.fixture
def client(
    graph: MaterializedGraph,
    champion: ServedModel,
    engine: TransformersEngine,
    store: ExchangeStore,
) -> Iterator[TestClient]:
    manifest = graph.state / "assets" / MANIFEST_NAME

    def from_rag_index(question: str, k: int) -> list[RetrievedChunk]:
        return retrieve(question, k, manifest_path=manifest)

    config = graph.profile.serving.model_copy(update={"max_tokens": 24, "default_max_tokens": 24})
    app = create_app(
        engine,
        store,
        champion,
        config,
        graph.profile.evaluation.generation,
        TOKEN,
        from_rag_index,
    )
    with TestClient(app) as test_client:
        yield test_client


def test_champion_and_named_versions_resolve_to_the_trained_adapter(
    graph: MaterializedGraph, champion: ServedModel
) -> None:
    adapter = graph.value("qlora_adapter")
    promoted = graph.value("champion_model")
    tracking_uri = graph.defs.resources["mlflow"].resolved_tracking_uri()
    options = ServeOptions(host="127.0.0.1", port=0, tracking_uri=tracking_uri)

    challenger = resolve_served_model(
        graph.profile, ServeOptions("127.0.0.1", 0, "challenger", tracking_uri=tracking_uri)
    )
    by_number = resolve_served_model(
        graph.profile,
        ServeOptions("127.0.0.1", 0, f"v{champion.version}", tracking_uri=tracking_uri),
    )

    assert champion.model.adapter_path == adapter["path"]
    assert champion.model.base_model_path == adapter["base_model_path"]
    assert champion.version == promoted["champion_version"]
    assert champion.source == f"champion (version {champion.version})"
    assert resolve_served_model(graph.profile, options) == champion
    assert challenger.model == by_number.model == champion.model
    assert by_number.source == f"version {champion.version}"
    with pytest.raises(ServedModelNotFound, match="no version 999"):
        resolve_served_model(
            graph.profile, ServeOptions("127.0.0.1", 0, "999", tracking_uri=tracking_uri)
        )


def test_chat_answers_with_rag_context_streams_and_stores_feedback(
    graph: MaterializedGraph, champion: ServedModel, client: TestClient, store: ExchangeStore
) -> None:
    models = client.get("/v1/models", headers=AUTH).json()["data"]
    messages = [{"role": "user", "content": QUESTION}]
    answer = client.post(
        "/v1/chat/completions", json={"messages": messages, "model": champion.name}, headers=AUTH
    ).json()
    with client.stream(
        "POST",
        "/v1/chat/completions",
        json={"messages": messages, "stream": True},
        headers=AUTH,
    ) as response:
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    chunks = [json.loads(event.removeprefix("data: ")) for event in events[:-1]]
    streamed = "".join(chunk["choices"][0]["delta"].get("content", "") for chunk in chunks)
    started = datetime.now(UTC) - timedelta(minutes=1)
    for response_id, body in (
        (answer["id"], {"thumbs": "up", "rating": 4}),
        (chunks[0]["id"], {"thumbs": "down", "corrected_answer": "Use Selective Sync."}),
    ):
        feedback = client.post(
            "/v1/feedback", json={"response_id": response_id, **body}, headers=AUTH
        )
        assert feedback.status_code == 201

    assert [model["id"] for model in models] == [graph.profile.use_case.registered_model_name]
    assert models[0]["version"] == champion.version
    assert answer["model_version"] == champion.version
    # The tiny test model may end its answer at once; what matters is that it is the same
    # answer, streamed or not, and that it was stored and judged.
    assert answer["choices"][0]["finish_reason"] in ("stop", "length")
    assert answer["rag_chunk_ids"] and answer["rag_chunk_ids"][0].startswith("docs/")
    assert events[-1] == "data: [DONE]"
    # Greedy decoding: the streamed answer is the answer.
    assert streamed.strip() == answer["choices"][0]["message"]["content"]
    rows = read_feedback(store.engine, started, datetime.now(UTC) + timedelta(minutes=1))
    assert [(row["response_id"], row["thumbs"]) for row in rows] == [
        (answer["id"], "up"),
        (chunks[0]["id"], "down"),
    ]
    assert rows[0]["messages"] == [
        {"role": "user", "content": QUESTION.replace("ann.lee@example.com", "<EMAIL>")}
    ]
    assert rows[0]["model_version"] == champion.version
    assert rows[0]["rag_chunk_ids"] == answer["rag_chunk_ids"]
    assert rows[1]["corrected_answer"] == "Use Selective Sync."


def test_the_champion_is_served_behind_its_own_scope_guard(
    graph: MaterializedGraph,
    champion: ServedModel,
    engine: TransformersEngine,
    store: ExchangeStore,
) -> None:
    """The registry version carries the adapter's calibration: a question far from every chunk
    gets the profile's reply, one the docs cover reaches the model."""
    from llm_assets.serving.guardrails import guardrails_for

    profile = graph.profile
    guard = guardrails_for(
        champion.model.adapter_path, profile.guardrails, profile.cleaning.pii_allow_list
    )
    manifest = graph.state / "assets" / MANIFEST_NAME

    def from_rag_index(question: str, k: int) -> list[RetrievedChunk]:
        return retrieve(question, k, manifest_path=manifest)

    poem = "Write me a sonnet about the autumn leaves in Vienna."
    scores = {q: from_rag_index(q, 1)[0].score for q in (poem, QUESTION)}
    config = profile.serving.model_copy(update={"max_tokens": 8, "default_max_tokens": 8})
    app = create_app(
        engine,
        store,
        champion,
        config,
        profile.evaluation.generation,
        TOKEN,
        from_rag_index,
        guardrails=guard,
    )
    with TestClient(app) as guarded:
        answers = {
            q: guarded.post(
                "/v1/chat/completions",
                json={"messages": [{"role": "user", "content": q}]},
                headers=AUTH,
            ).json()
            for q in scores
        }

    assert guard.min_relevance is not None
    for question, score in scores.items():
        declined = answers[question]["choices"][0]["message"]["content"] == guard.out_of_scope_reply
        assert declined == (score < guard.min_relevance), (question, score, guard.min_relevance)
    assert scores[poem] < guard.min_relevance <= scores[QUESTION]
