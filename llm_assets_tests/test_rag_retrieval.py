import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from llm_assets.cli import main
from llm_assets.rag.index import FaissStore, PgvectorStore, libpq_url, write_faiss_store
from llm_assets.rag.retrieval import (
    MANIFEST_NAME,
    golden_queries,
    mean_reciprocal_rank,
    recall_at_k,
)

PGVECTOR_TEST_URL = "LLM_ASSETS_TEST_PGVECTOR_URL"


def test_recall_and_mrr_match_hand_computed_values() -> None:
    ranked = [
        ["docs/a", "docs/b", "docs/c"],  # relevant first: rank 1
        ["docs/x", "docs/a", "docs/b"],  # relevant at rank 3
        ["docs/x", "docs/y", "docs/z"],  # relevant absent
        ["docs/d", "docs/d", "docs/e"],  # relevant at rank 1, repeated by a second chunk
    ]
    relevant = ["docs/a", "docs/b", "docs/c", "docs/d"]
    assert recall_at_k(ranked, relevant, k=1) == 2 / 4
    assert recall_at_k(ranked, relevant, k=3) == 3 / 4
    assert mean_reciprocal_rank(ranked, relevant, k=3) == pytest.approx((1 + 1 / 3 + 0 + 1) / 4)
    # Beyond k a hit no longer counts.
    assert mean_reciprocal_rank(ranked, relevant, k=2) == pytest.approx((1 + 0 + 0 + 1) / 4)
    assert recall_at_k([], [], k=5) == 0.0


def test_golden_queries_join_input_and_leave_out_records_not_indexed() -> None:
    golden = pd.DataFrame(
        [
            {"source": "docs", "record_id": "a.md", "instruction": "What is X?", "input": ""},
            {"source": "docs", "record_id": "a.md", "instruction": "What is X?", "input": ""},
            {"source": "tickets", "record_id": "T1", "instruction": "Help", "input": "ctx"},
            {"source": "golden_file", "record_id": "g#L1", "instruction": "Q?", "input": ""},
        ]
    )
    queries = golden_queries(golden, indexed_records={"docs/a.md", "tickets/T1"})
    assert queries["query"].tolist() == ["What is X?", "Help\n\nctx"]
    assert queries["relevant_record"].tolist() == ["docs/a.md", "tickets/T1"]
    assert len(golden_queries(golden)) == 3


def _chunks(count: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "chunk_id": [f"s/r{i}#0" for i in range(count)],
            "record_id": [f"r{i}" for i in range(count)],
            "source": "s",
            "uri": [f"file{i}.md" for i in range(count)],
            "heading": "",
            "char_start": 0,
            "char_end": 4,
            "text": [f"text {i}" for i in range(count)],
        }
    )


def _unit_vectors(count: int, dim: int = 16) -> np.ndarray:
    vectors = np.random.default_rng(0).normal(size=(count, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("ann_min_chunks, kind", [(10_000, "flat"), (0, "hnsw")])
def test_faiss_store_finds_each_vector_as_its_own_nearest(
    tmp_path: Path, ann_min_chunks: int, kind: str
) -> None:
    vectors = _unit_vectors(300)
    info = write_faiss_store(tmp_path, _chunks(300), vectors, ann_min_chunks=ann_min_chunks)
    assert (info["index"], info["rows"], info["dim"]) == (kind, 300, 16)
    store = FaissStore(tmp_path)
    hits = store.search(vectors[:20], k=3)
    assert [query_hits[0].chunk_id for query_hits in hits] == [f"s/r{i}#0" for i in range(20)]
    assert hits[0][0].score == pytest.approx(1.0, abs=1e-5)
    assert hits[0][0].score >= hits[0][1].score >= hits[0][2].score
    assert (hits[5][0].uri, hits[5][0].text) == ("file5.md", "text 5")


def test_libpq_url_takes_sqlalchemy_urls_and_refuses_other_databases() -> None:
    assert libpq_url("postgresql+psycopg://rag:pw@db:5432/rag") == "postgresql://rag:pw@db:5432/rag"
    with pytest.raises(RuntimeError, match="postgresql"):
        libpq_url("sqlite:///rag.db")


def test_pgvector_store_without_its_url_names_the_variable(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("RAG_TEST_UNSET_URL", raising=False)
    with pytest.raises(RuntimeError, match=r"\$RAG_TEST_UNSET_URL is not set"):
        PgvectorStore.from_env("RAG_TEST_UNSET_URL", "rag_chunks")


@pytest.mark.skipif(
    not os.environ.get(PGVECTOR_TEST_URL),
    reason=f"set {PGVECTOR_TEST_URL} to a Postgres database with the pgvector extension",
)
def test_pgvector_store_round_trip() -> None:
    store = PgvectorStore(os.environ[PGVECTOR_TEST_URL], "llm_assets_test_chunks")
    vectors = _unit_vectors(50)
    info = store.write(_chunks(50), vectors, hnsw_m=8)
    assert (info["rows"], info["dim"]) == (50, 16)
    hits = store.search(vectors[:3], k=2)
    assert [query_hits[0].chunk_id for query_hits in hits] == ["s/r0#0", "s/r1#0", "s/r2#0"]
    # Writing again replaces the rows instead of adding to them.
    store.write(_chunks(10), vectors[:10], hnsw_m=8)
    assert len(store.search(vectors[:1], k=20)[0]) == 10


def test_ask_without_an_index_says_how_to_build_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ask", "anything", "--index", str(tmp_path / MANIFEST_NAME)]) == 2
    assert "materialize --select '+rag_index'" in capsys.readouterr().err
