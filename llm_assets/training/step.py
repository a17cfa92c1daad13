"""What a training-stage step returns, and the stores it is handed (it never opens them itself:
the Dagster layer passes the resources in)."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

ValueT = TypeVar("ValueT")


@dataclass(frozen=True)
class TrainingRun(Generic[ValueT]):
    """What a step made (`value`), what its asset page shows (`report`: plain values, paths as
    `Path`, links as `Link`), and the data version of what it made."""

    value: ValueT
    report: dict[str, object]
    data_version: str


class ArtifactFolders(Protocol):
    """Folders one per asset and run, written atomically (the artifact store)."""

    def new_folder(self, asset_name: str, run_id: str) -> AbstractContextManager[Path]: ...

    def folder(self, asset_name: str, run_id: str) -> Path: ...

    def work_dir(self, asset_name: str, inputs_digest: str) -> Path: ...


class StartMlflowRun(Protocol):
    """Opens an MLflow run tagged with the Dagster run (a new one named `run_name`, or the
    existing `run_id` reopened) and yields it; the `mlflow` module logs to it meanwhile."""

    def __call__(self, run_name: str, run_id: str | None = None) -> AbstractContextManager[Any]: ...
