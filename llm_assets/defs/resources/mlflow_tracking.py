"""MLflow tracking: the store runs are recorded in, and the links to them."""

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dagster as dg

from llm_assets.settings import PROJECT_ROOT, default_tracking_uri, state_dir


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

    def tracking(self) -> Any:
        """The `mlflow` module pointed at this store and experiment, for registry calls and
        reads outside a run."""
        return self._client_ready()

    def _client_ready(self) -> Any:
        import mlflow

        uri = self.resolved_tracking_uri()
        server = is_tracking_server(uri)
        if server:
            check_tracking_server(uri)
        mlflow.set_tracking_uri(uri)
        if mlflow.get_experiment_by_name(self.experiment_name) is None:
            # A tracking server stores artifacts where it was told to (--artifacts-destination);
            # a local store keeps them beside its database.
            artifacts = self.artifact_root or (
                None if server else (Path(state_dir()) / "mlflow" / "artifacts").as_uri()
            )
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

    def end_runs_of(self, dagster_run_id: str, status: str = "KILLED") -> list[str]:
        """End the MLflow runs of a Dagster run that are still RUNNING (their process was
        killed and could not end them) with `status`; returns their ids."""
        mlflow = self._client_ready()
        runs = mlflow.search_runs(
            filter_string=f"tags.`dagster.run_id` = '{dagster_run_id}' "
            "and attributes.status = 'RUNNING'",
            search_all_experiments=True,
            output_format="list",
        )
        client = mlflow.MlflowClient()
        for run in runs:
            client.set_terminated(run.info.run_id, status=status)
        return [run.info.run_id for run in runs]

    def _ui(self) -> str:
        """The MLflow UI: the tracking server itself, else `make mlflow`'s address."""
        uri = self.resolved_tracking_uri()
        return uri.rstrip("/") if is_tracking_server(uri) else self.ui_url

    def run_url(self, run: Any) -> str:
        return f"{self._ui()}/#/experiments/{run.info.experiment_id}/runs/{run.info.run_id}"

    def model_version_url(self, name: str, version: str) -> str:
        return f"{self._ui()}/#/models/{name}/versions/{version}"


def is_tracking_server(uri: str) -> bool:
    """An MLflow tracking server (HTTP), not a store this process opens itself."""
    return uri.startswith(("http://", "https://"))


class MlflowUnavailable(RuntimeError):
    """The MLflow tracking server does not answer."""


def check_tracking_server(uri: str, timeout_seconds: float = 5.0) -> None:
    """Raise `MlflowUnavailable` unless the server at `uri` answers its health check in time.

    The MLflow client retries an unreachable server for minutes, and a run that cannot record
    its results must fail before hours of GPU time, not after."""
    import urllib.error
    import urllib.request

    health = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(health, timeout=timeout_seconds) as response:  # noqa: S310
            if response.status == 200:
                return
            problem = f"HTTP {response.status}"
    except (urllib.error.URLError, OSError) as error:
        problem = str(getattr(error, "reason", error))
    raise MlflowUnavailable(
        f"the MLflow tracking server at {uri} is unreachable ({problem}); nothing was started. "
        "Start it (make mlflow, or the team's server), or point MLFLOW_TRACKING_URI at one "
        "that answers"
    )
