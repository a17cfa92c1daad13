"""What a rag step returns, the stores it is handed (it never opens them itself: the Dagster
layer passes the resources in), and the embedding model every step of the group loads alike."""

from __future__ import annotations

from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from llm_assets.rag.embedding import Embedder, load_embedder
from llm_assets.settings import ProfileError, RagConfig

ValueT = TypeVar("ValueT")


@dataclass(frozen=True)
class RagRun(Generic[ValueT]):
    """What a step made (`value`), what its asset page shows (`report`: plain values, paths as
    `Path`, Markdown as `Markdown`, links as `Link`), and the data version of what it made
    (None: Dagster derives one)."""

    value: ValueT
    report: dict[str, object]
    data_version: str | None


class ArtifactFolders(Protocol):
    """Folders one per asset and run, written atomically, and work folders that outlive a run
    (the artifact store)."""

    def new_folder(self, asset_name: str, run_id: str) -> AbstractContextManager[Path]: ...

    def folder(self, asset_name: str, run_id: str) -> Path: ...

    def work_dir(self, asset_name: str, inputs_digest: str) -> Path: ...


class StartMlflowRun(Protocol):
    """Opens an MLflow run named `run_name`, tagged with the Dagster run, and yields it; the
    `mlflow` module logs to it meanwhile."""

    def __call__(self, run_name: str) -> AbstractContextManager[Any]: ...


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
