"""The `rag_index` step: the chunks and their vectors written to the configured store, and how
well golden questions find their record in it (recall@k, MRR), logged to MLflow."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from llm_assets.contracts import Link, Markdown, RagIndex
from llm_assets.rag.embedding_run import stacked_vectors
from llm_assets.rag.step import rag_embedder
from llm_assets.settings import RagConfig
from llm_assets.stage_output import ArtifactFolders, StageOutput, StartMlflowRun

if TYPE_CHECKING:
    from llm_assets.rag.index import VectorStore
    from llm_assets.rag.retrieval import RetrievalQuality

ASSET = "rag_index"
# Missed golden questions the asset page lists, and how much of each question it shows.
MISSES_SHOWN = 10
QUERY_CHARS = 80


def run_rag_index(
    config: RagConfig,
    base_dir: Path,
    rag_chunks: pd.DataFrame,
    rag_embeddings: pd.DataFrame,
    golden_set: pd.DataFrame,
    *,
    folders: ArtifactFolders,
    run_id: str,
    start_mlflow_run: StartMlflowRun,
    mlflow_run_url: Callable[[Any], str],
) -> StageOutput[RagIndex]:
    """Write the store (`rag.store`: a FAISS folder of the `rag_index` asset for `run_id`, or
    the pgvector table), measure retrieval of the golden questions whose record is indexed and
    log the settings and scores to a new MLflow run. Its value is the manifest `retrieve()`
    opens."""
    from llm_assets.rag.retrieval import evaluate_retrieval, search_over

    store, info, location = _write_store(
        config, rag_chunks, stacked_vectors(rag_embeddings), folders, run_id
    )
    embedder = rag_embedder(config, base_dir, folders)
    indexed = set(rag_chunks["source"] + "/" + rag_chunks["record_id"])
    retriever = search_over(store, embedder, config.search, config.hybrid_candidates, config.rrf_k)
    quality = evaluate_retrieval(retriever, golden_set, config.eval_k, indexed)
    k = config.eval_k
    with start_mlflow_run(f"rag-index-{run_id[:8]}") as run:
        _log_to_mlflow(config, quality, len(rag_chunks))
        run_url = mlflow_run_url(run)
    manifest = RagIndex(
        store=config.store,
        **location,
        index=info["index"],
        chunks=info["rows"],
        dim=info["dim"],
        model=config.embedding_model,
        embedder=embedder.describe(),
        hnsw_ef_search=config.hnsw_ef_search,
        search=config.search,
        hybrid_candidates=config.hybrid_candidates,
        rrf_k=config.rrf_k,
        k=k,
        recall_at_k=quality.recall_at_k,
        mrr=quality.mrr,
        golden_queries=quality.queries,
        mlflow_run_id=run.info.run_id,
    )
    misses = quality.misses.head(MISSES_SHOWN)
    report: dict[str, object] = {
        "dagster/row_count": info["rows"],
        "store": config.store,
        "index": info["index"],
        "search": config.search,
        "dim": info["dim"],
        "model": config.embedding_model,
        "backend": embedder.backend,
        "path": Path(location["path"]) if "path" in location else None,
        f"recall_at_{k}": round(quality.recall_at_k, 4),
        f"mrr_at_{k}": round(quality.mrr, 4),
        "golden_queries": quality.queries,
        "golden_unjudged": quality.unjudged,
        "by_source": quality.by_source,
        "missed_questions": Markdown(
            misses.assign(query=misses["query"].str.slice(0, QUERY_CHARS)).to_markdown(index=False)
            if len(misses)
            else "every golden question found its record"
        ),
        "mlflow_run": Link(run_url),
    }
    return StageOutput(manifest, report, None)


def _write_store(
    config: RagConfig,
    chunks: pd.DataFrame,
    vectors: np.ndarray,
    folders: ArtifactFolders,
    run_id: str,
) -> tuple[VectorStore, dict[str, Any], dict[str, str]]:
    """The store opened for search, what writing it recorded, and where it is (the manifest's
    `path`, or `url_env` and `table`)."""
    from llm_assets.rag.index import FaissStore, PgvectorStore, write_faiss_store

    if config.store == "pgvector":
        store = PgvectorStore.from_env(
            config.pgvector_url_env, config.pgvector_table, config.hnsw_ef_search
        )
        info = store.write(chunks, vectors, config.hnsw_m)
        return store, info, {"url_env": config.pgvector_url_env, "table": config.pgvector_table}
    with folders.new_folder(ASSET, run_id) as folder:
        info = write_faiss_store(
            folder, chunks, vectors, config.ann_min_chunks, config.hnsw_m, config.hnsw_ef_search
        )
    path = folders.folder(ASSET, run_id)
    return FaissStore(path), info, {"path": str(path)}


def _log_to_mlflow(config: RagConfig, quality: RetrievalQuality, chunks: int) -> None:
    """The rag settings as parameters; recall@k and MRR overall and per source as metrics."""
    import mlflow as mlflow_client

    k = config.eval_k
    mlflow_client.log_params(
        {f"rag.{key}": value for key, value in config.model_dump(mode="json").items()}
    )
    mlflow_client.log_metrics(
        {
            f"recall_at_{k}": quality.recall_at_k,
            f"mrr_at_{k}": quality.mrr,
            "golden_queries": quality.queries,
            "golden_unjudged": quality.unjudged,
            "chunks": chunks,
            **{
                f"{source}.recall_at_{k}": scores["recall_at_k"]
                for source, scores in quality.by_source.items()
            },
        }
    )
