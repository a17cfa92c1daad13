"""The `rag_chunks` step: the knowledge records of the cleaned corpus cut into chunks the
embedding model reads whole."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from llm_assets.rag.chunking import chunk_records
from llm_assets.rag.knowledge import knowledge_records
from llm_assets.rag.step import rag_embedder
from llm_assets.settings import RagConfig
from llm_assets.stage_output import ArtifactFolders, StageOutput
from llm_assets.storage import frame_digest

# What the asset page previews of each chunk.
PREVIEW_COLUMNS = ["chunk_id", "heading", "tokens", "text"]


def run_rag_chunks(
    config: RagConfig,
    base_dir: Path,
    knowledge_sources: list[str],
    cleaned_corpus: pd.DataFrame,
    golden_set: pd.DataFrame,
    *,
    folders: ArtifactFolders,
) -> StageOutput[pd.DataFrame]:
    """Every record of `knowledge_sources` in `cleaned_corpus`, less those a golden pair was
    answered from, cut as `rag.chunking` says into windows of the embedding model's tokens."""
    embedder = rag_embedder(config, base_dir, folders)
    indexed = knowledge_records(cleaned_corpus, golden_set, knowledge_sources)
    chunks = chunk_records(
        indexed,
        config.chunking,
        embedder.token_spans,
        config.window_tokens,
        config.overlap_tokens,
    )
    report: dict[str, object] = {
        "dagster/row_count": len(chunks),
        "records": int(chunks[["source", "record_id"]].drop_duplicates().shape[0]),
        "strategy": config.chunking,
        "window_tokens": config.window_tokens,
        "tokens_mean": float(round(chunks["tokens"].mean(), 1)) if len(chunks) else 0.0,
        "by_source": chunks.groupby("source").size().to_dict(),
    }
    return StageOutput(chunks, report, frame_digest(chunks))
