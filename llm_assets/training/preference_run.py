"""The `preference_adapter` step: tune the SFT model on what users said (KTO or DPO), or say why
not and keep the SFT adapter as the challenger.

It runs after `qlora_adapter` in the quarterly job. With `preference.method` on and at least
`preference.min_rows` usable rows over every quarter of `preference_dataset`, the SFT adapter is
merged into its base (once per inputs, in the step's work folder), and a new adapter is trained
on the merged model by the same training process as SFT (`accelerate launch` through Dagster
Pipes, checkpoints in a work folder keyed by the inputs, the MLflow run with params, inputs and
loss history, the adapter logged as an MLflow model). Otherwise the value is the SFT adapter
itself, so nothing below re-runs, and the metadata says why.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from llm_assets.contracts import Adapter, ChatTemplate, Link
from llm_assets.rag.context import CONTEXT_FORMAT_FILE
from llm_assets.serving.guardrails import SCOPE_CALIBRATION_FILE
from llm_assets.settings import DatasetConfig, PreferenceConfig, TrainingConfig
from llm_assets.stage_output import ArtifactFolders, StageOutput
from llm_assets.storage import atomic_directory, folder_digest, frame_digest
from llm_assets.training.adapter_run import Launch, MlflowTracking
from llm_assets.training.preference import TRAINER_COLUMNS

if TYPE_CHECKING:
    from datasets import Dataset

ASSET = "preference_adapter"
# Files beside the SFT adapter that serving and evaluation read (the retrieval context format,
# the scope guard's calibration); the preference adapter answers the same way.
CARRIED_FILES = (CONTEXT_FORMAT_FILE, SCOPE_CALIBRATION_FILE)
MERGEABLE_METHODS = ("qlora", "lora", "full")


def usable_rows(preference_dataset: Any, method: str) -> pd.DataFrame:
    """The rows `method`'s trainer reads, from every quarter of `preference_dataset` (one
    quarter's `DatasetDict`, or {quarter: DatasetDict}), in quarter order."""
    quarters = (
        dict(preference_dataset)
        if isinstance(preference_dataset, Mapping) and "kto" not in preference_dataset
        else {"": preference_dataset}
    )
    columns = TRAINER_COLUMNS[method]
    frames = [
        quarter[method].to_pandas()[columns]
        for _, quarter in sorted(quarters.items())
        if method in quarter and len(quarter[method])
    ]
    if not frames:
        return pd.DataFrame(columns=columns)
    return pd.concat(frames, ignore_index=True)


def why_not_tuned(preference: PreferenceConfig, training_method: str, rows: int) -> str | None:
    """Why preference tuning does not run this time, or None when it does."""
    if preference.method == "off":
        return "preference.method is off"
    if training_method not in MERGEABLE_METHODS:
        return (
            f"training.method {training_method!r} adds virtual prompt tokens that cannot be "
            "merged, so there is no SFT model to tune on"
        )
    if rows < preference.min_rows:
        kind = "KTO rows" if preference.method == "kto" else "DPO pairs"
        return (
            f"{rows} usable {kind} over every quarter of feedback so far, fewer than "
            f"preference.min_rows ({preference.min_rows})"
        )
    return None


def run_preference_tuning(
    preference: PreferenceConfig,
    training: TrainingConfig,
    datasets: DatasetConfig,
    sft_adapter: Adapter,
    preference_dataset: Any,
    chat_template: ChatTemplate,
    *,
    base_dir: Path,
    folders: ArtifactFolders,
    run_id: str,
    mlflow: MlflowTracking,
    launch: Launch,
    log: Callable[[str], None],
) -> StageOutput[Adapter]:
    """The preference-tuned adapter over `sft_adapter`, or `sft_adapter` itself with the reason
    it was not tuned."""
    method = preference.method
    rows = usable_rows(preference_dataset, "kto" if method == "off" else method)
    reason = why_not_tuned(preference, training.method, len(rows))
    if reason is not None:
        log(f"preference tuning skipped: {reason}")
        report: dict[str, object] = {
            "preference_tuned": False,
            "why_not": reason,
            "challenger": f"the SFT adapter ({sft_adapter.path})",
        }
        return StageOutput(sft_adapter, report, sft_adapter.weights_digest)
    return _tune(
        preference, training, datasets, sft_adapter, rows, chat_template,
        base_dir=base_dir, folders=folders, run_id=run_id, mlflow=mlflow, launch=launch, log=log,
    )  # fmt: skip


def preference_inputs_digest(
    preference: PreferenceConfig, training: TrainingConfig, sft_adapter: Adapter, rows_digest: str
) -> str:
    """What preference tuning learns from: the key of its work folder (resume)."""
    learned = {
        k: v for k, v in training.model_dump(mode="json").items() if k not in training.LAUNCH_FIELDS
    }
    inputs = [sft_adapter.weights_digest, rows_digest, preference.model_dump(mode="json"), learned]
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def merged_sft_model(sft_adapter: Adapter, folder: Path) -> Path:
    """The SFT adapter merged into its base in `folder` (made once; kept for a resumed run)."""
    from llm_assets.export.merge import merge_adapter

    if not folder.exists():
        with atomic_directory(folder) as temporary:
            merge_adapter(
                sft_adapter.base_model_path, sft_adapter.path, sft_adapter.method, temporary
            )
    return folder


def _tune(
    preference: PreferenceConfig,
    training: TrainingConfig,
    datasets: DatasetConfig,
    sft_adapter: Adapter,
    rows: pd.DataFrame,
    chat_template: ChatTemplate,
    *,
    base_dir: Path,
    folders: ArtifactFolders,
    run_id: str,
    mlflow: MlflowTracking,
    launch: Launch,
    log: Callable[[str], None],
) -> StageOutput[Adapter]:
    import mlflow as mlflow_client
    import torch

    from llm_assets.training.launch import (
        TrainingSpec,
        resolve_accelerate_config,
        save_dataset_once,
        training_command,
    )

    method = preference.method
    rows_digest = frame_digest(rows.astype(str))
    work_dir = folders.work_dir(
        ASSET, preference_inputs_digest(preference, training, sft_adapter, rows_digest)
    )
    merged = merged_sft_model(sft_adapter, work_dir / "sft_merged")
    dataset_dir = save_dataset_once(_as_dataset_dict(rows), work_dir / "dataset")
    accelerate_config = resolve_accelerate_config(
        training.accelerate_config, torch.cuda.is_available(), base_dir
    )
    with mlflow.start_run(f"preference_adapter-{run_id[:8]}") as run:
        mlflow_client.log_params(
            {
                **{f"preference.{k}": v for k, v in preference.model_dump(mode="json").items()},
                "training.method": training.method,
                "sft.adapter_weights_digest": sft_adapter.weights_digest,
                "sft.mlflow_run_id": sft_adapter.mlflow_run_id,
                "model.id_or_path": sft_adapter.base_model_id,
                "data.preference_digest": rows_digest,
                "data.rows": len(rows),
            }
        )
        mlflow_client.log_input(
            mlflow_client.data.from_pandas(
                rows.astype(str), name=f"preference_dataset.{method}", digest=rows_digest
            ),
            context="training",
        )
        spec_path = TrainingSpec(
            base_model_path=str(merged),
            base_model_id=sft_adapter.base_model_id,
            dataset_dir=str(dataset_dir),
            work_dir=str(work_dir),
            training=training.model_dump(mode="json"),
            max_length=datasets.max_length,
            chat_template=chat_template.template,
            mlflow_tracking_uri=mlflow.tracking_uri,
            mlflow_run_id=run.info.run_id,
            preference_method=method,
            preference=preference.model_dump(mode="json"),
        ).write(work_dir / "spec.json")
        command = training_command(
            sys.executable, accelerate_config, spec_path, training.num_processes
        )
        log(f"preference training process: {shlex.join(command)}")
        reported_metadata = launch(command)
        reported = {key: getattr(value, "value", value) for key, value in reported_metadata.items()}
        path = _store(work_dir / "final", Path(sft_adapter.path), folders, run_id)
        run_url = mlflow.run_url(run)
    resumed_from = reported["resumed_from_checkpoint"]
    adapter = Adapter(
        path=str(path),
        method=str(reported["method"]),
        base_model_path=str(merged),
        base_model_id=sft_adapter.base_model_id,
        mlflow_run_id=run.info.run_id,
        mlflow_model_uri=reported["mlflow_model_uri"],  # type: ignore[arg-type]
        global_step=int(reported["steps"]),  # type: ignore[call-overload]
        train_loss=float(reported["train_loss"]),  # type: ignore[arg-type]
        resumed_from=None if resumed_from == "none" else str(resumed_from),
        retrieval=sft_adapter.retrieval,
        weights_digest=folder_digest(path),
        preference_method=method,
        original_base_model_path=sft_adapter.start_model_path,
    )
    report: dict[str, object] = {
        **reported_metadata,
        "preference_tuned": True,
        "rows": len(rows),
        "path": path,
        "sft_merged": str(merged),
        "mlflow_run": Link(run_url),
        "mlflow_run_id": run.info.run_id,
    }
    return StageOutput(adapter, report, adapter.weights_digest)


def _as_dataset_dict(rows: pd.DataFrame) -> Any:
    from datasets import Dataset, DatasetDict

    train: Dataset = Dataset.from_pandas(rows, preserve_index=False)
    return DatasetDict(train=train)


def _store(final: Path, sft_adapter_dir: Path, folders: ArtifactFolders, run_id: str) -> Path:
    with folders.new_folder(ASSET, run_id) as folder:
        shutil.copytree(final, folder, dirs_exist_ok=True)
        for name in CARRIED_FILES:
            if (sft_adapter_dir / name).is_file():
                shutil.copy2(sft_adapter_dir / name, folder / name)
    return folders.folder(ASSET, run_id)
