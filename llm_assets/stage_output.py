"""What a stage function hands the Dagster layer, and the stores it is handed in return.

Stage functions never import dagster and never open a resource themselves: they get the artifact
store or an MLflow run opener as the small protocols below, and return a `StageOutput` that
`llm_assets.defs.metadata.stage_output` turns into the asset's output.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    import pandas as pd

ValueT = TypeVar("ValueT")


@dataclass(frozen=True)
class StageOutput(Generic[ValueT]):
    """What a step made (`value`); what its asset page shows (`report`: plain values, paths as
    `Path`, Markdown as `contracts.Markdown`, links as `contracts.Link`, tables as DataFrames);
    the data version of what it made (None: Dagster derives one); and the rows a preview shows,
    in the columns it shows (None: no preview)."""

    value: ValueT
    report: dict[str, object]
    data_version: str | None = None
    preview: pd.DataFrame | None = None


class ArtifactFolders(Protocol):
    """Folders one per asset and run, written atomically, and work folders that outlive a run
    (the artifact store)."""

    def new_folder(self, asset_name: str, run_id: str) -> AbstractContextManager[Path]: ...

    def folder(self, asset_name: str, run_id: str) -> Path: ...

    def work_dir(self, asset_name: str, inputs_digest: str) -> Path: ...


class StartMlflowRun(Protocol):
    """Opens an MLflow run tagged with the Dagster run (a new one named `run_name`, or the
    existing `run_id` reopened) and yields it; the `mlflow` module logs to it meanwhile."""

    def __call__(self, run_name: str, run_id: str | None = None) -> AbstractContextManager[Any]: ...


class MlflowStore(Protocol):
    """The MLflow store (`MlflowResource`): the `mlflow` module pointed at it, and the pages of
    its runs and registry versions."""

    def tracking(self) -> Any: ...

    def run_url(self, run: Any) -> str: ...

    def model_version_url(self, name: str, version: str) -> str: ...
