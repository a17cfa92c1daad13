"""External systems as resources, one module per system: the asset store (`io_manager`), the
artifact store (`artifacts`), MLflow (`mlflow_tracking`), the launcher of training processes
(`training_launcher`) and its Kubernetes pod (`kubernetes_training`), the feedback store
(`feedback_store`), and the set a code location uses (`defaults`)."""

from llm_assets.defs.resources.artifacts import ArtifactStoreResource
from llm_assets.defs.resources.defaults import default_resources, training_launcher_from_environment
from llm_assets.defs.resources.feedback_store import FeedbackStoreResource
from llm_assets.defs.resources.io_manager import READ_PARTITIONS, LocalAssetIOManager
from llm_assets.defs.resources.kubernetes_training import KubernetesTrainingLauncherResource
from llm_assets.defs.resources.mlflow_tracking import (
    MlflowResource,
    MlflowUnavailable,
    check_tracking_server,
    default_tracking_uri,
    git_commit,
    is_tracking_server,
)
from llm_assets.defs.resources.training_launcher import TrainingLauncherResource

__all__ = [
    "READ_PARTITIONS",
    "ArtifactStoreResource",
    "FeedbackStoreResource",
    "KubernetesTrainingLauncherResource",
    "LocalAssetIOManager",
    "MlflowResource",
    "MlflowUnavailable",
    "TrainingLauncherResource",
    "check_tracking_server",
    "default_resources",
    "default_tracking_uri",
    "git_commit",
    "is_tracking_server",
    "training_launcher_from_environment",
]
