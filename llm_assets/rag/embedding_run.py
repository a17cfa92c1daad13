"""The `rag_embeddings` step: one unit vector per chunk, reusing the vector of every chunk text
the last run embedded with the same model."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from llm_assets.rag.chunking import text_to_embed
from llm_assets.rag.embedding import (
    embed_reusing,
    embedder_identity,
    read_vector_store,
    vector_problems,
    vectors_digest,
    write_vector_store,
)
from llm_assets.rag.step import rag_embedder
from llm_assets.settings import RagConfig
from llm_assets.stage_output import ArtifactFolders, StageOutput


def run_rag_embeddings(
    config: RagConfig,
    base_dir: Path,
    rag_chunks: pd.DataFrame,
    *,
    folders: ArtifactFolders,
    warn: Callable[[str], None],
) -> StageOutput[pd.DataFrame]:
    """A frame of `chunk_id` and `vector` in `rag_chunks` order. Vectors are kept by text in a
    work folder of the embedder; a damaged store is reported to `warn` and re-embedded."""
    embedder = rag_embedder(config, base_dir, folders)
    texts = [
        text_to_embed(heading, text)
        for heading, text in zip(rag_chunks["heading"], rag_chunks["text"], strict=True)
    ]
    store_path = folders.work_dir("rag_embeddings", embedder_identity(embedder))
    store_path = store_path / "vectors.parquet"
    try:
        stored = read_vector_store(store_path)
    except Exception as error:  # a damaged store only costs re-embedding
        warn(f"ignoring the stored vectors in {store_path}: {error}")
        stored = {}
    started = time.perf_counter()
    embedded = embed_reusing(texts, embedder.encode, stored)
    seconds = time.perf_counter() - started
    vectors = embedded.vectors
    write_vector_store(store_path, embedded)
    frame = pd.DataFrame({"chunk_id": rag_chunks["chunk_id"], "vector": list(vectors)})
    ids = hashlib.sha256("\n".join(frame["chunk_id"]).encode()).hexdigest()[:8]
    report: dict[str, object] = {
        "dagster/row_count": len(frame),
        "dim": embedder.dim,
        "model": config.embedding_model,
        "backend": embedder.backend,
        "seconds": round(seconds, 2),
        "embedded": embedded.embedded,
        "reused": embedded.reused,
        "embedded_per_second": round(embedded.embedded / seconds, 1) if seconds else 0.0,
    }
    return StageOutput(frame, report, f"{vectors_digest(vectors)}-{ids}")


def stacked_vectors(embeddings: pd.DataFrame) -> np.ndarray:
    """The `vector` column of `rag_embeddings` as one float32 matrix (0 x 0 when empty)."""
    if embeddings.empty:
        return np.zeros((0, 0), np.float32)
    return np.stack([np.asarray(v, np.float32) for v in embeddings["vector"]])


def embedding_problems(
    rag_embeddings: pd.DataFrame, rag_chunks: pd.DataFrame, dim: int
) -> list[str]:
    """Why `rag_embeddings` is not one finite unit vector of length `dim` per chunk of
    `rag_chunks`, in chunk order; empty when it is."""
    problems = []
    if rag_embeddings["chunk_id"].tolist() != rag_chunks["chunk_id"].tolist():
        problems.append("chunk ids differ from rag_chunks (missing, extra or reordered)")
    lengths = {len(vector) for vector in rag_embeddings["vector"]}
    if lengths - {dim}:
        problems.append(f"vector lengths {sorted(lengths)}, expected {dim}")
    else:
        problems += vector_problems(stacked_vectors(rag_embeddings), dim)
    return problems
