"""External systems as resources: the asset store, the artifact store and MLflow."""

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from llm_assets.settings import PROJECT_ROOT, state_dir
from llm_assets.storage import (
    StoredTable,
    atomic_directory,
    atomic_file,
    move_into_place,
    point_link_at,
)

_FORMATS = (".parquet", ".hfds", ".json")


class LocalAssetIOManager(dg.ConfigurableIOManager):
    """Tables as Parquet, `datasets` objects as Arrow folders, manifests (dicts) as JSON.

    A step that streams returns a `StoredTable` (a Parquet file it wrote in batches), which is
    moved into place; an input typed `StoredTable` gets the file to read in batches instead of a
    DataFrame in memory.

    Every write is atomic: a new version is written beside the old and swapped in by a rename,
    so a crash or a full disk leaves the previous version readable.
    """

    base_dir: str

    def _stem(self, key: dg.AssetKey) -> Path:
        return Path(self.base_dir).joinpath(*key.path)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        import json

        stem = self._stem(context.asset_key)
        if isinstance(obj, StoredTable):
            move_into_place(obj.path, stem.with_suffix(".parquet"))
        elif isinstance(obj, pd.DataFrame):
            with atomic_file(stem.with_suffix(".parquet")) as temporary:
                obj.to_parquet(temporary, index=False)
        elif type(obj).__name__ in ("Dataset", "DatasetDict"):  # before dict: a DatasetDict is one
            versions = stem.with_suffix(".versions")
            version = versions / context.run_id
            with atomic_directory(version) as temporary:
                obj.save_to_disk(str(temporary))
            link = stem.with_suffix(".hfds")
            previous = link.resolve() if link.is_symlink() else None
            point_link_at(link, version)
            # Keep the version just replaced (readers may hold it open); drop older ones.
            for old in versions.iterdir():
                if old not in (version, previous) and not old.name.startswith("."):
                    shutil.rmtree(old, ignore_errors=True)
        elif isinstance(obj, dict):
            with atomic_file(stem.with_suffix(".json")) as temporary:
                temporary.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))
        else:
            raise TypeError(
                f"{context.asset_key.to_user_string()}: cannot store {type(obj).__name__}; "
                "return a DataFrame, a datasets.Dataset/DatasetDict or a dict manifest"
            )

    def load_input(self, context: dg.InputContext) -> Any:
        import json

        stem = self._stem(context.asset_key)
        if stem.with_suffix(".parquet").is_file():
            if _wants_stored_table(context):
                return StoredTable.open(stem.with_suffix(".parquet"))
            return pd.read_parquet(stem.with_suffix(".parquet"))
        if stem.with_suffix(".json").is_file():
            return json.loads(stem.with_suffix(".json").read_text())
        if stem.with_suffix(".hfds").exists():
            from datasets import load_from_disk

            return load_from_disk(str(stem.with_suffix(".hfds").resolve()))
        raise FileNotFoundError(
            f"{context.asset_key.to_user_string()} has not been materialized into {self.base_dir} "
            "yet; materialize it first (make run SELECT='+<asset>')"
        )


def _wants_stored_table(context: dg.InputContext) -> bool:
    try:
        return context.dagster_type.typing_type is StoredTable
    except dg.DagsterInvariantViolationError:  # built by hand, as tests and notebooks do
        return False


class ArtifactStoreResource(dg.ConfigurableResource):
    """Folders of models, adapters and reports, one per run, written once and atomically."""

    base_dir: str

    @contextmanager
    def new_folder(self, asset_name: str, run_id: str) -> Iterator[Path]:
        with atomic_directory(Path(self.base_dir) / asset_name / run_id) as temporary:
            yield temporary

    def folder(self, asset_name: str, run_id: str) -> Path:
        return Path(self.base_dir) / asset_name / run_id

    def work_dir(self, asset_name: str, inputs_digest: str) -> Path:
        """A folder that survives failed runs, keyed by the inputs: where checkpoints go so a
        re-run on the same inputs resumes."""
        path = Path(self.base_dir) / "work" / asset_name / inputs_digest
        path.mkdir(parents=True, exist_ok=True)
        return path


def git_commit() -> str:
    """The code version of this checkout: commit id, with `-dirty` when files are modified."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


class MlflowResource(dg.ConfigurableResource):
    """MLflow tracking: `MLFLOW_TRACKING_URI` when set, else a SQLite store under the state dir.

    Every run is tagged with the Dagster run id, asset key, partition and git commit, so a user
    can walk from an MLflow run back to the exact data and code.
    """

    tracking_uri: str | None = None
    artifact_root: str | None = None
    experiment_name: str = "llm_assets"
    ui_url: str = "http://127.0.0.1:5000"

    def resolved_tracking_uri(self) -> str:
        return self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or default_tracking_uri()

    def _client_ready(self) -> Any:
        import mlflow

        mlflow.set_tracking_uri(self.resolved_tracking_uri())
        if mlflow.get_experiment_by_name(self.experiment_name) is None:
            artifacts = self.artifact_root or (Path(state_dir()) / "mlflow" / "artifacts").as_uri()
            mlflow.create_experiment(self.experiment_name, artifact_location=artifacts)
        mlflow.set_experiment(self.experiment_name)
        return mlflow

    @contextmanager
    def start_run(
        self, context: dg.AssetExecutionContext, run_name: str, run_id: str | None = None
    ) -> Iterator[Any]:
        """A new MLflow run for this asset (or, with `run_id`, an existing one reopened)."""
        mlflow = self._client_ready()
        tags = {
            "dagster.run_id": context.run.run_id,
            "dagster.asset_key": ",".join(
                sorted(key.to_user_string() for key in context.selected_asset_keys)
            ),
            "dagster.partition": context.partition_key if context.has_partition_key else "",
            "git_commit": git_commit(),
        }
        with mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name) as run:
            if run_id is None:
                mlflow.set_tags(tags)
            yield run

    def run_url(self, run: Any) -> str:
        return f"{self.ui_url}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"


def default_tracking_uri() -> str:
    database = Path(state_dir()) / "mlflow" / "mlflow.db"
    database.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{database}"


def default_resources(
    root: Path | None = None, experiment_name: str = "llm_assets"
) -> dict[str, Any]:
    """Resources over one state folder (default: `state_dir()`); tests pass a temporary one."""
    root = root or state_dir()
    tracking_uri = None if root == state_dir() else f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
    if tracking_uri:
        (root / "mlflow").mkdir(parents=True, exist_ok=True)
    return {
        "io_manager": LocalAssetIOManager(base_dir=str(root / "assets")),
        "artifacts": ArtifactStoreResource(base_dir=str(root / "artifacts")),
        "mlflow": MlflowResource(
            tracking_uri=tracking_uri,
            artifact_root=(root / "mlflow" / "artifacts").as_uri(),
            experiment_name=experiment_name,
        ),
    }
