"""The resources a code location runs with, over one state folder."""

import os
from pathlib import Path
from typing import Any

from llm_assets.defs.resources.artifacts import ArtifactStoreResource
from llm_assets.defs.resources.feedback_store import FeedbackStoreResource
from llm_assets.defs.resources.io_manager import LocalAssetIOManager
from llm_assets.defs.resources.kubernetes_training import KubernetesTrainingLauncherResource
from llm_assets.defs.resources.mlflow_tracking import MlflowResource, is_tracking_server
from llm_assets.defs.resources.training_launcher import TrainingLauncherResource
from llm_assets.settings import state_dir


def training_launcher_from_environment() -> Any:
    """`kubernetes` in LLM_ASSETS_TRAINING_LAUNCHER: a GPU pod per training; else a local
    process on the step's machine."""
    kind = os.environ.get("LLM_ASSETS_TRAINING_LAUNCHER", "local").strip().lower()
    if kind == "kubernetes":
        return KubernetesTrainingLauncherResource()
    if kind != "local":
        raise ValueError(f"LLM_ASSETS_TRAINING_LAUNCHER={kind!r}: use local or kubernetes")
    return TrainingLauncherResource()


def default_resources(
    root: Path | None = None,
    experiment_name: str = "llm_assets",
    tracking_uri: str | None = None,
    feedback_url_env: str = "LLM_ASSETS_FEEDBACK_DB_URL",
) -> dict[str, Any]:
    """Resources over one state folder (default: `state_dir()`); tests pass a temporary one,
    and `tracking_uri` when they track to an MLflow server. `feedback_url_env` is the profile's
    serving.database_url_env, so the pipeline reads the store the server writes."""
    root = root or state_dir()
    if tracking_uri is None and root != state_dir():
        tracking_uri = f"sqlite:///{root / 'mlflow' / 'mlflow.db'}"
        (root / "mlflow").mkdir(parents=True, exist_ok=True)
    server = bool(tracking_uri and is_tracking_server(tracking_uri))
    return {
        "io_manager": LocalAssetIOManager(base_dir=str(root / "assets")),
        "artifacts": ArtifactStoreResource(base_dir=str(root / "artifacts")),
        "mlflow": MlflowResource(
            tracking_uri=tracking_uri,
            artifact_root=None if server else (root / "mlflow" / "artifacts").as_uri(),
            experiment_name=experiment_name,
        ),
        "training_launcher": training_launcher_from_environment(),
        "feedback_store": FeedbackStoreResource(
            url_env=feedback_url_env,
            sqlite_path=None if root == state_dir() else str(root / "serving" / "feedback.db"),
        ),
    }
