"""The `qlora_adapter` step: fine-tune the base model on the SFT dataset in a process of its own,
logging to an MLflow run, and store the adapter with what evaluation and serving read beside it.

The step keys a work folder by its inputs (so a re-run on the same inputs resumes from the last
checkpoint), records its inputs in the MLflow run, writes the `TrainingSpec`, hands the
`accelerate launch` command to `launch` (Dagster Pipes, in the Dagster layer) and builds the
`Adapter` from what the training process reported.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from llm_assets.contracts import Adapter, BaseModelFolder, ChatTemplate, Link
from llm_assets.rag.context import ContextFormat, write_context_format
from llm_assets.serving.guardrails import answered_question_relevance, write_scope_calibration
from llm_assets.settings import DatasetConfig, RetrievalConfig, TrainingConfig
from llm_assets.stage_output import ArtifactFolders, StageOutput, StartMlflowRun
from llm_assets.storage import folder_digest, frame_digest

if TYPE_CHECKING:
    from datasets import DatasetDict

ASSET = "qlora_adapter"
# Validation conversations the chat-template check renders and tokenizes.
CHECK_ROWS = 16
MLFLOW_DATASET_COLUMNS = ["pair_id", "instruction", "input", "output"]

# Runs the training command and returns the metadata the process reported, as it typed it.
Launch = Callable[[list[str]], Mapping[str, object]]


@dataclass(frozen=True)
class MlflowTracking:
    """The MLflow store as the step uses it: a run opened for the asset, the URI the training
    process logs to, and the page of a run."""

    start_run: StartMlflowRun
    tracking_uri: str
    run_url: Callable[[Any], str]


def run_adapter_training(
    training: TrainingConfig,
    datasets: DatasetConfig,
    base_dir: Path,
    base_model: BaseModelFolder,
    sft_dataset: DatasetDict,
    chat_template: ChatTemplate,
    *,
    folders: ArtifactFolders,
    run_id: str,
    mlflow: MlflowTracking,
    launch: Launch,
    log: Callable[[str], None],
) -> StageOutput[Adapter]:
    """Train `base_model` on `sft_dataset` as `training` says (`datasets` gives max_length and
    retrieval; `base_dir` locates a relative accelerate config) and store the adapter in the
    `qlora_adapter` folder of `run_id`."""
    import mlflow as mlflow_client
    import torch

    from llm_assets.training.launch import (
        TrainingSpec,
        resolve_accelerate_config,
        save_dataset_once,
        training_command,
    )

    accelerate_config = resolve_accelerate_config(
        training.accelerate_config, torch.cuda.is_available(), base_dir
    )
    frames = {
        "train": sft_dataset["train"].to_pandas(),
        "validation": sft_dataset["validation"].to_pandas(),
    }
    data_digests = {name: frame_digest(frame) for name, frame in frames.items()}
    settings = training.model_dump(mode="json")
    work_dir = folders.work_dir(
        ASSET, training_inputs_digest(training, base_model, data_digests, chat_template)
    )
    dataset_dir = save_dataset_once(sft_dataset, work_dir / "dataset")

    with mlflow.start_run(f"qlora_adapter-{run_id[:8]}") as run:
        mlflow_client.log_params(
            training_params(
                settings, accelerate_config, base_model, data_digests, datasets, chat_template
            )
        )
        for name, frame in frames.items():
            dataset = mlflow_client.data.from_pandas(
                frame[MLFLOW_DATASET_COLUMNS], name=f"sft_dataset.{name}", digest=data_digests[name]
            )
            mlflow_client.log_input(dataset, context="training" if name == "train" else "eval")

        spec_path = TrainingSpec(
            base_model_path=base_model.path,
            base_model_id=base_model.model_id,
            dataset_dir=str(dataset_dir),
            work_dir=str(work_dir),
            training=settings,
            max_length=datasets.max_length,
            chat_template=chat_template.template,
            mlflow_tracking_uri=mlflow.tracking_uri,
            mlflow_run_id=run.info.run_id,
        ).write(work_dir / "spec.json")
        command = training_command(
            sys.executable, accelerate_config, spec_path, training.num_processes
        )
        log(f"training process: {shlex.join(command)}")
        # As the training process typed them (the history is Markdown), for the asset page;
        # plain values for the manifest.
        reported_metadata = launch(command)
        reported = {key: getattr(value, "value", value) for key, value in reported_metadata.items()}
        path = store_adapter_folder(
            work_dir / "final", folders, run_id, datasets.retrieval, frames["train"]
        )
        run_url = mlflow.run_url(run)

    adapter = adapter_made(reported, path, base_model, run.info.run_id, datasets.retrieval)
    report: dict[str, object] = {
        **reported_metadata,
        "path": path,
        "mlflow_run": Link(run_url),
        "mlflow_run_id": run.info.run_id,
        "accelerate_config": accelerate_config,
    }
    return StageOutput(adapter, report, adapter.weights_digest)


def training_inputs_digest(
    training: TrainingConfig,
    base_model: BaseModelFolder,
    data_digests: Mapping[str, str],
    chat_template: ChatTemplate,
) -> str:
    """What the training learns from (launch settings left out): the key of its work folder, so
    a run resumed on another launch set-up continues the same checkpoints."""
    learned = {
        k: v for k, v in training.model_dump(mode="json").items() if k not in training.LAUNCH_FIELDS
    }
    return hashlib.sha256(
        json.dumps(
            [base_model.weights_digest, dict(data_digests), learned, chat_template.digest],
            sort_keys=True,
        ).encode()
    ).hexdigest()[:16]


def training_params(
    settings: Mapping[str, object],
    accelerate_config: Path,
    base_model: BaseModelFolder,
    data_digests: Mapping[str, str],
    datasets: DatasetConfig,
    chat_template: ChatTemplate,
) -> dict[str, object]:
    """The MLflow params of the run: the training settings, the base model and the data."""
    return {
        **{f"training.{k}": v for k, v in settings.items()},
        "training.accelerate_config_file": accelerate_config.name,
        "model.id_or_path": base_model.model_id,
        "model.revision": base_model.revision or "",
        "model.weights_digest": base_model.weights_digest,
        "model.license": base_model.license,
        "model.gguf_sha256": base_model.gguf.get("gguf_sha256", ""),
        "data.train_digest": data_digests["train"],
        "data.validation_digest": data_digests["validation"],
        "data.max_length": datasets.max_length,
        "data.chat_template_digest": chat_template.digest,
        "data.chat_template_origin": chat_template.origin,
    }


def store_adapter_folder(
    final: Path,
    folders: ArtifactFolders,
    run_id: str,
    retrieval: RetrievalConfig,
    train_frame: pd.DataFrame,
) -> Path:
    """The training's `final` folder copied into the run's `qlora_adapter` folder; with
    retrieval on, the context format trained with and the answered questions' relevance
    scores (scope calibration) beside it."""
    with folders.new_folder(ASSET, run_id) as folder:
        shutil.copytree(final, folder, dirs_exist_ok=True)
        if retrieval.enabled:
            write_context_format(folder, ContextFormat(retrieval.k, retrieval.max_context_chars))
            write_scope_calibration(folder, answered_question_relevance(train_frame))
    return folders.folder(ASSET, run_id)


def adapter_made(
    reported: Mapping[str, Any],
    path: Path,
    base_model: BaseModelFolder,
    mlflow_run_id: str,
    retrieval: RetrievalConfig,
) -> Adapter:
    """The `Adapter` from what the training process reported (plain values)."""
    resumed_from = reported["resumed_from_checkpoint"]
    return Adapter(
        path=str(path),
        method=reported["method"],
        base_model_path=base_model.path,
        base_model_id=base_model.model_id,
        mlflow_run_id=mlflow_run_id,
        mlflow_model_uri=reported["mlflow_model_uri"],
        global_step=int(reported["steps"]),
        train_loss=float(reported["train_loss"]),
        resumed_from=None if resumed_from == "none" else resumed_from,
        retrieval=retrieval.enabled,
        weights_digest=folder_digest(path),
    )


def validation_conversations(sft_dataset: DatasetDict, rows: int = CHECK_ROWS) -> list[Any]:
    """The first `rows` validation conversations, as lists of message dicts."""
    return [list(map(dict, messages)) for messages in sft_dataset["validation"]["messages"][:rows]]


def adapter_template_differences(
    adapter: Adapter, chat_template: ChatTemplate, conversations: list[Any]
) -> list[str]:
    """Where the tokenizer saved with `adapter` renders or tokenizes `conversations` otherwise
    than the base tokenizer with the dataset's chat template; [] if nowhere."""
    from transformers import AutoTokenizer

    from llm_assets.datasets.chat_template import load_chat_tokenizer, template_differences

    return template_differences(
        load_chat_tokenizer(adapter.base_model_path, chat_template.template),
        AutoTokenizer.from_pretrained(adapter.path),
        conversations,
    )
