"""Every served exchange as an MLflow trace and its feedback as assessments, read back through
MLflow's API from a real SQLite tracking store; and serving that goes on when MLflow fails."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from llm_assets.rag.index import RetrievedChunk
from llm_assets.serving.app import create_app
from llm_assets.serving.engine import TransformersEngine
from llm_assets.serving.models import ServedModel, served_from_folder
from llm_assets.serving.store import ExchangeStore, Redactor, exchanges, open_database
from llm_assets.serving.tracing import TRACE_HEADER, ExchangeTracer, exchange_tracer
from llm_assets.settings import GenerationConfig, ServingConfig

from .conftest import save_tiny_llama, served_exchange

TOKEN = "trace-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MODEL = "support-assistant"
QUESTION = {"role": "user", "content": "How do I restore a deleted file? Mail jo@example.com"}
CHUNK = RetrievedChunk("docs/trash#0", "trash", "docs", "trash.md", "", "Trash: 30 days.", 0.9)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> ServedModel:
    """A tiny random Llama, served as if it were version 3 of the registered model."""
    folder = save_tiny_llama(tmp_path_factory.mktemp("tiny-model"))
    folder_model = served_from_folder(folder, name=MODEL)
    return replace(folder_model, version="3", source="champion (version 3)")


@pytest.fixture(scope="module")
def engine(served: ServedModel) -> TransformersEngine:
    return TransformersEngine.load(served.model)


@contextmanager
def tracking_uri(uri: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """mlflow pointed at `uri`, then back (set_tracking_uri also sets $MLFLOW_TRACKING_URI)."""
    import mlflow

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # restored after the test
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        yield mlflow
    finally:
        mlflow.set_tracking_uri(previous)


@pytest.fixture
def tracking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}", monkeypatch) as mlflow:
        yield mlflow


@pytest.fixture
def store(tmp_path: Path) -> ExchangeStore:
    redactor = Redactor(("EMAIL", "PHONE", "PERSON"))
    return ExchangeStore(open_database(f"sqlite:///{tmp_path / 'feedback.db'}"), redactor)


def _client(
    engine: TransformersEngine, served: ServedModel, store: ExchangeStore, tracer: ExchangeTracer
) -> TestClient:
    def retrieve(question: str, k: int) -> list[RetrievedChunk]:
        return [CHUNK]

    settings = ServingConfig(max_tokens=6, default_max_tokens=4)
    app = create_app(
        engine, store, served, settings, GenerationConfig(), TOKEN, retrieve, tracer=tracer
    )
    return TestClient(app)


def _stored_trace_ids(store: ExchangeStore) -> list[str | None]:
    with store.engine.connect() as connection:
        return list(connection.execute(sa.select(exchanges.c.trace_id)).scalars())


def test_an_answer_and_its_feedback_are_a_trace_with_assessments(
    tracking: Any, engine: TransformersEngine, served: ServedModel, store: ExchangeStore
) -> None:
    tracer = exchange_tracer(served, f"{MODEL}-serving")
    with _client(engine, served, store, tracer) as client:
        response = client.post(
            "/v1/chat/completions", json={"messages": [QUESTION], "user": "user-17"}, headers=AUTH
        )
        body = response.json()
        feedback = client.post(
            "/v1/feedback",
            json={
                "response_id": body["id"],
                "thumbs": "down",
                "rating": 2,
                "comment": "Too vague; call me at +1 415 555 0132",
                "corrected_answer": "Open the trash and choose Restore.",
            },
            headers=AUTH,
        )

    trace_id = body["trace_id"]
    assert response.status_code == 200 and feedback.status_code == 201
    assert trace_id.startswith("tr-") and response.headers[TRACE_HEADER] == trace_id
    assert _stored_trace_ids(store) == [trace_id]
    [found] = tracking.search_traces(
        locations=[tracer.experiment_id],
        filter_string="tag.model_version = '3'",
        return_type="list",
    )
    trace = tracking.MlflowClient().get_trace(trace_id)
    assert found.info.trace_id == trace_id and trace.info.state == "OK"
    assert trace.info.tags["model_name"] == MODEL
    assert trace.info.tags["model_source"] == "champion (version 3)"
    assert trace.info.tags["response_id"] == body["id"]
    # The conversation and answer as the store keeps them: PII redacted.
    assert json.loads(trace.data.request) == {
        "messages": [{"role": "user", "content": "How do I restore a deleted file? Mail <EMAIL>"}]
    }
    answer = json.loads(trace.data.response)["choices"][0]["message"]
    assert answer == {"role": "assistant", "content": body["choices"][0]["message"]["content"]}
    root = trace.data.spans[0]
    assert root.attributes["rag_chunk_ids"] == ["docs/trash#0"] == body["rag_chunk_ids"]
    assert root.attributes["latency_ms"] > 0
    assert root.attributes["completion_tokens"] == body["usage"]["completion_tokens"]
    assert trace.info.trace_metadata["mlflow.trace.user"] == "user-17"
    judged = {a.name: a for a in trace.info.assessments}
    assert judged["thumbs"].value is False and judged["rating"].value == 2
    assert judged["rating"].rationale == "Too vague; call me at <PHONE>"
    assert judged["correction"].value == "Open the trash and choose Restore."
    assert judged["correction"].expectation is not None  # ground truth, not a judgement
    assert {a.source.source_type for a in judged.values()} == {"HUMAN"}
    assert {a.source.source_id for a in judged.values()} == {"user-17"}
    assert tracer.failures == 0


def test_a_streamed_answer_is_traced_once_it_is_stored(
    tracking: Any, engine: TransformersEngine, served: ServedModel, store: ExchangeStore
) -> None:
    tracer = exchange_tracer(served, "support-serving-custom")
    with _client(engine, served, store, tracer) as client:
        with client.stream(
            "POST",
            "/v1/chat/completions",
            json={"messages": [QUESTION], "stream": True},
            headers=AUTH,
        ) as response:
            trace_id = response.headers[TRACE_HEADER]
            raw = "".join(response.iter_text())
        only_comment = client.post(
            "/v1/feedback",
            json={"response_id": json.loads(raw.split("\n\n")[0][6:])["id"], "comment": "ok"},
            headers=AUTH,
        )

    assert only_comment.status_code == 201
    trace = tracking.get_trace(trace_id, flush=True)
    pieces = [json.loads(event[6:]) for event in raw.split("\n\n")[1:-3]]
    streamed = "".join(chunk["choices"][0]["delta"]["content"] for chunk in pieces)
    answer = json.loads(trace.data.response)["choices"][0]["message"]["content"]
    assert answer == streamed.strip()
    assert trace.data.spans[0].attributes["first_token_ms"] > 0
    assert tracking.get_experiment(trace.info.experiment_id).name == "support-serving-custom"
    assert trace.info.trace_metadata.get("mlflow.trace.user") is None
    [comment] = trace.info.assessments
    assert (comment.name, comment.value, comment.source.source_id) == ("comment", "ok", "anonymous")
    assert _stored_trace_ids(store) == [trace_id]


def test_traces_of_a_version_from_a_logged_model_link_to_it(
    tracking: Any, served: ServedModel, tmp_path: Path
) -> None:
    # Not in the default experiment, whose artifacts would go to ./mlruns.
    experiment_id = tracking.create_experiment("training", (tmp_path / "artifacts").as_uri())
    model = tracking.create_external_model(name="tiny-adapter", experiment_id=experiment_id)
    tracking.register_model(f"models:/{model.model_id}", MODEL)

    tracer = exchange_tracer(replace(served, version="1"), f"{MODEL}-serving")
    exchange = served_exchange("chatcmpl-1", "Where is the trash?", "In the sidebar.")
    tracer.close(tracer.open(exchange, None, time.time_ns()), exchange)
    tracking.flush_trace_async_logging()

    assert tracer.model_id == model.model_id
    [linked] = tracking.search_traces(
        locations=[tracer.experiment_id], model_id=model.model_id, return_type="list"
    )
    assert linked.info.tags["response_id"] == "chatcmpl-1"


def test_serving_goes_on_when_the_tracking_store_fails(
    tmp_path: Path,
    engine: TransformersEngine,
    served: ServedModel,
    store: ExchangeStore,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the store's folder should be")
    with tracking_uri(f"sqlite:///{blocker / 'mlflow.db'}", monkeypatch):
        with caplog.at_level(logging.WARNING, logger="llm_assets.serving.tracing"):
            tracer = exchange_tracer(served, f"{MODEL}-serving")
            with _client(engine, served, store, tracer) as client:
                answers = [
                    client.post("/v1/chat/completions", json={"messages": [QUESTION]}, headers=AUTH)
                    for _ in range(2)
                ]
                feedback = client.post(
                    "/v1/feedback",
                    json={"response_id": answers[0].json()["id"], "thumbs": "up"},
                    headers=AUTH,
                )

    assert [answer.status_code for answer in answers] == [200, 200]
    assert [answer.json()["trace_id"] for answer in answers] == [None, None]
    assert TRACE_HEADER not in answers[0].headers
    assert feedback.status_code == 201
    assert _stored_trace_ids(store) == [None, None]
    assert tracer.failures == 1 and tracer.experiment_id is None
    warnings = [r for r in caplog.records if r.name == "llm_assets.serving.tracing"]
    assert len(warnings) == 1 and "MLFLOW_TRACKING_URI" in warnings[0].getMessage()


def test_feedback_on_a_trace_mlflow_lost_is_stored_and_counted(
    tracking: Any,
    engine: TransformersEngine,
    served: ServedModel,
    store: ExchangeStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracer = exchange_tracer(served, f"{MODEL}-serving")
    with _client(engine, served, store, tracer) as client:
        answer = client.post("/v1/chat/completions", json={"messages": [QUESTION]}, headers=AUTH)
        tracking.flush_trace_async_logging()
        tracking.MlflowClient().delete_traces(
            tracer.experiment_id, trace_ids=[answer.json()["trace_id"]]
        )
        with caplog.at_level(logging.WARNING, logger="llm_assets.serving.tracing"):
            feedback = [
                client.post(
                    "/v1/feedback",
                    json={"response_id": answer.json()["id"], "rating": r},
                    headers=AUTH,
                )
                for r in (4, 5)
            ]

    assert [response.status_code for response in feedback] == [201, 201]
    assert tracer.failures == 2
    assert len([r for r in caplog.records if r.name == "llm_assets.serving.tracing"]) == 1


def test_a_store_without_the_trace_column_still_opens(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = sa.create_engine(url)
    with old.begin() as connection:
        connection.execute(
            sa.text(
                "CREATE TABLE serving_exchanges (response_id VARCHAR(64) PRIMARY KEY, "
                "created_at DATETIME NOT NULL, model VARCHAR(200) NOT NULL, "
                "model_version VARCHAR(64) NOT NULL, messages JSON NOT NULL, answer TEXT NOT NULL, "
                "prompt_tokens INTEGER NOT NULL, completion_tokens INTEGER NOT NULL, "
                "latency_ms FLOAT NOT NULL, first_token_ms FLOAT, "
                "finish_reason VARCHAR(16) NOT NULL, stream BOOLEAN NOT NULL, "
                "rag_chunk_ids JSON NOT NULL, pii_redacted JSON NOT NULL)"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO serving_exchanges VALUES ('chatcmpl-old', '2026-01-01 00:00:00', "
                "'m', '1', '[]', 'hi', 1, 1, 1.0, NULL, 'stop', 0, '[]', '{}')"
            )
        )
    old.dispose()

    store = ExchangeStore(open_database(url), Redactor(("EMAIL",)))
    open_database(url)  # a second start finds the column there

    assert _stored_trace_ids(store) == [None]
    feedback_id = store.record_feedback("chatcmpl-old", thumbs="up")
    assert feedback_id is not None
    assert store.traced_feedback(feedback_id) == {
        "feedback_id": feedback_id,
        "response_id": "chatcmpl-old",
        "trace_id": None,
        "thumbs": "up",
        "rating": None,
        "comment": None,
        "corrected_answer": None,
    }
