"""The rag group on the tiny profile (the session graph): chunks, embeddings, the FAISS index,
retrieval quality in MLflow, `retrieve()` and `llm-assets ask`."""

from __future__ import annotations

import json

import dagster as dg
import numpy as np
import pytest

from llm_assets.cli import main
from llm_assets.rag.retrieval import MANIFEST_NAME, retrieve

from .conftest import MaterializedGraph, materialize_all

pytestmark = pytest.mark.slow

QUESTION = "How do I choose which folders stay on this computer?"


def test_rag_index_records_its_store_and_golden_retrieval_quality(
    graph: MaterializedGraph,
) -> None:
    import mlflow

    chunks = graph.value("rag_chunks")
    manifest = graph.value("rag_index")
    assert set(chunks["source"]) == {"docs"}  # the tiny profile indexes documents only
    assert chunks["chunk_id"].str.fullmatch(r"docs/.+#\d+").all()
    assert (manifest["store"], manifest["index"], manifest["dim"]) == ("faiss", "flat", 384)
    assert manifest["chunks"] == len(chunks) == len(graph.value("rag_embeddings"))
    assert manifest["embedder"]["backend"] == "onnx-int8"
    assert manifest["golden_queries"] >= 1
    assert manifest["recall_at_k"] >= 0.5
    event = graph.instance.get_latest_materialization_event(dg.AssetKey("rag_index"))
    assert event is not None and event.asset_materialization is not None
    metadata = event.asset_materialization.metadata
    assert metadata["mlflow_run"].value.endswith(manifest["mlflow_run_id"])
    client = mlflow.MlflowClient(
        tracking_uri=graph.defs.resources["mlflow"].resolved_tracking_uri()
    )
    run = client.get_run(manifest["mlflow_run_id"])
    assert run.data.metrics["recall_at_5"] == pytest.approx(manifest["recall_at_k"])
    assert run.data.metrics["mrr_at_5"] == pytest.approx(manifest["mrr"])
    assert run.data.tags["dagster.asset_key"] == "rag_index"


def test_retrieve_finds_the_guide_that_answers(graph: MaterializedGraph) -> None:
    manifest_path = graph.state / "assets" / MANIFEST_NAME
    hits = retrieve(QUESTION, k=3, manifest_path=manifest_path)
    assert len(hits) == 3
    assert hits[0].source == "docs" and "selective-sync" in hits[0].uri
    assert hits[0].score >= hits[1].score >= hits[2].score
    chunks = graph.value("rag_chunks").set_index("chunk_id")
    assert chunks.loc[hits[0].chunk_id, "text"] == hits[0].text


def test_ask_prints_the_closest_chunks(
    graph: MaterializedGraph, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest_path = graph.state / "assets" / MANIFEST_NAME
    assert main(["ask", QUESTION, "-k", "2", "--index", str(manifest_path)]) == 0
    printed = capsys.readouterr().out
    assert "selective-sync" in printed and "1. " in printed and "3. " not in printed
    assert main(["ask", QUESTION, "-k", "1", "--index", str(manifest_path), "--json"]) == 0
    hit = json.loads(capsys.readouterr().out)[0]
    assert set(hit) == {"chunk_id", "record_id", "source", "uri", "heading", "text", "score"}


@pytest.mark.advances_session_graph
def test_embedding_again_reuses_the_vector_of_every_unchanged_chunk(
    graph: MaterializedGraph,
) -> None:
    before = graph.value("rag_embeddings")

    result = materialize_all(graph.defs, graph.instance, selection=["rag_embeddings"])

    assert result.success
    (materialization,) = result.asset_materializations_for_node("rag_embeddings")
    assert materialization.metadata["reused"].value == len(before)
    assert materialization.metadata["embedded"].value == 0
    after = graph.value("rag_embeddings")
    assert after["chunk_id"].tolist() == before["chunk_id"].tolist()
    np.testing.assert_array_equal(np.stack(after["vector"]), np.stack(before["vector"]))
