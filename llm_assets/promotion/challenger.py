"""The `registered_challenger` step: the adapter as a version of the use case's registered
model, alias `challenger`."""

from __future__ import annotations

from llm_assets.contracts import Adapter, Link, RegisteredVersion
from llm_assets.evaluation.config import UseCaseConfig
from llm_assets.evaluation.registry import CHALLENGER, register_adapter, set_alias
from llm_assets.stage_output import MlflowStore, StageOutput


def run_challenger_registration(
    qlora_adapter: Adapter, use_case: UseCaseConfig, *, mlflow: MlflowStore, dagster_run_id: str
) -> StageOutput[RegisteredVersion]:
    """`qlora_adapter` registered under `use_case.registered_model_name` (weights already
    registered keep their version) and given alias `challenger`."""
    model_name = use_case.registered_model_name
    tracking = mlflow.tracking()
    version, created = register_adapter(
        tracking,
        model_name,
        qlora_adapter,
        dagster_run_id=dagster_run_id,
        description=f"Adapters fine-tuned for the {use_case.name} use case by llm_assets.",
    )
    set_alias(tracking, model_name, CHALLENGER, version.version)
    registered = RegisteredVersion(
        model_name=model_name,
        version=str(version.version),
        created=created,
        source=version.source,
        weights_digest=qlora_adapter.weights_digest,
        adapter_path=qlora_adapter.path,
        adapter_mlflow_run_id=qlora_adapter.mlflow_run_id,
    )
    shown: dict[str, object] = {
        "model_name": model_name,
        "version": str(version.version),
        "newly_registered": created,
        "source": version.source,
        "weights_digest": qlora_adapter.weights_digest,
        "registry": Link(mlflow.model_version_url(model_name, str(version.version))),
    }
    return StageOutput(registered, shown, f"{model_name}-{version.version}")
