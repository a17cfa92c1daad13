"""What a rag step returns, the stores it is handed (it never opens them itself: the Dagster
layer passes the resources in), and the embedding model every step of the group loads alike."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TypeVar

from llm_assets.rag.embedding import Embedder, load_embedder
from llm_assets.settings import ProfileError, RagConfig
from llm_assets.stage_output import ArtifactFolders

ValueT = TypeVar("ValueT")


def check_rag_sources(config: RagConfig, source_names: Iterable[str]) -> None:
    """Raise ProfileError when `rag.sources` names a source the profile does not have."""
    names = list(source_names)
    unknown = sorted(set(config.sources) - set(names))
    if unknown:
        raise ProfileError(
            f"rag.sources names {unknown}, which are not sources of this profile; use names "
            f"from sources: {names}"
        )


def rag_embedder(config: RagConfig, base_dir: Path, folders: ArtifactFolders) -> Embedder:
    """The embedding model of `rag.embedding_model` (a relative folder is under `base_dir`),
    its ONNX export cached in the artifact store; refuses a window longer than it reads."""
    embedder = load_embedder(
        config.embedding_model,
        config.embedding_backend,
        config.batch_size,
        cache_root=folders.work_dir("rag_embedder", config.embedding_backend),
        base_dir=base_dir,
    )
    if config.window_tokens > embedder.max_tokens:
        raise ValueError(
            f"rag.window_tokens is {config.window_tokens} but {config.embedding_model} reads at "
            f"most {embedder.max_tokens} tokens of text; lower rag.window_tokens"
        )
    return embedder
