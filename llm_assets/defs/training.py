"""Group `training`: the base model and the fine-tuned adapter, tracked in MLflow."""

from functools import partial
from typing import Any

import dagster as dg
import pandas as pd

from llm_assets.code_versions import AssetSettings
from llm_assets.contracts import Adapter, BaseModelFolder, ChatTemplate
from llm_assets.defs.location import stage_definitions
from llm_assets.defs.metadata import stage_output
from llm_assets.defs.resources import (
    ArtifactStoreResource,
    MlflowResource,
    TrainingLauncherResource,
)
from llm_assets.settings import Profile, TrainingConfig
from llm_assets.training.adapter_run import (
    MlflowTracking,
    adapter_template_differences,
    run_adapter_training,
    validation_conversations,
)
from llm_assets.training.base_model_run import run_base_model

CODE = ["training", "defs/training.py", "defs/preference_tuning.py"]


def base_model_asset(profile: Profile) -> dg.AssetsDefinition:
    settings = AssetSettings(profile, "base_model", reads=["model", "training.seed"], code=CODE)

    @dg.asset(
        group_name="training",
        code_version=settings.code_version,
        metadata=settings.metadata(),
        kinds={"pytorch", "huggingface"},
    )
    def base_model(
        context: dg.AssetExecutionContext,
        artifacts: ArtifactStoreResource,
        cleaned_corpus: pd.DataFrame,
    ) -> dg.Output[BaseModelFolder]:
        """The model fine-tuning starts from: a tiny Llama pre-trained on the corpus, a real
        model loaded with `from_pretrained` from a local path or the Hugging Face cache, or a
        GGUF file (a path or an installed package's) dequantized into a model folder."""
        profile = settings.profile
        made = run_base_model(
            profile.model,
            profile.training.seed,
            profile.base_dir,
            cleaned_corpus,
            folders=artifacts,
            run_id=context.run.run_id,
        )
        return stage_output(made)

    return base_model


def qlora_adapter_asset(profile: Profile) -> dg.AssetsDefinition:
    settings = AssetSettings(
        profile,
        "qlora_adapter",
        reads=["training", "datasets.max_length", "datasets.retrieval"],
        runtime=[f"training.{name}" for name in TrainingConfig.LAUNCH_FIELDS],
        code=CODE,
    )

    @dg.asset(
        group_name="training",
        code_version=settings.code_version,
        metadata=settings.metadata(),
        kinds={"pytorch", "mlflow"},
        pool="gpu",
    )
    def qlora_adapter(
        context: dg.AssetExecutionContext,
        artifacts: ArtifactStoreResource,
        mlflow: MlflowResource,
        training_launcher: TrainingLauncherResource,
        base_model: BaseModelFolder,
        sft_dataset: Any,
        chat_template: ChatTemplate,
    ) -> dg.Output[Adapter]:
        """The fine-tuned adapter (QLoRA by default; LoRA, full or a prompt method by
        `training.method`), with the tokenizer and the chat template saved with the dataset.
        Trained in a process of its own (`accelerate launch`, through Dagster Pipes), which logs
        to this asset's MLflow run and logs the adapter as an MLflow model."""
        profile = settings.profile
        made = run_adapter_training(
            profile.training,
            profile.datasets,
            profile.base_dir,
            base_model,
            sft_dataset,
            chat_template,
            folders=artifacts,
            run_id=context.run.run_id,
            mlflow=MlflowTracking(
                partial(mlflow.start_run, context), mlflow.resolved_tracking_uri(), mlflow.run_url
            ),
            launch=partial(launch_through_pipes, context, training_launcher),
            log=context.log.info,
        )
        return stage_output(made)

    return qlora_adapter


def launch_through_pipes(
    context: dg.AssetExecutionContext, launcher: TrainingLauncherResource, command: list[str]
) -> Any:
    """Run the training `command` through Dagster Pipes; what the process reported."""
    return launcher.run(context=context, command=command).get_materialize_result().metadata or {}


@dg.asset_check(
    asset="qlora_adapter",
    additional_ins={"sft_dataset": dg.AssetIn("sft_dataset"), "chat_template": dg.AssetIn()},
    blocking=True,
    description="The tokenizer saved with the adapter renders and tokenizes validation "
    "conversations exactly as the base tokenizer with the dataset's chat template does.",
)
def qlora_adapter_keeps_training_chat_template(
    qlora_adapter: Adapter, sft_dataset: Any, chat_template: ChatTemplate
) -> dg.AssetCheckResult:
    rows = validation_conversations(sft_dataset)
    problems = adapter_template_differences(qlora_adapter, chat_template, rows)
    return dg.AssetCheckResult(
        passed=not problems,
        description=f"{len(rows)} conversations compared; {len(problems)} differences",
        metadata={"differences": dg.MetadataValue.json(problems[:20])},
    )


def build_training_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
    return (
        [base_model_asset(profile), qlora_adapter_asset(profile)],
        [qlora_adapter_keeps_training_chat_template],
    )


@dg.definitions
def training_definitions() -> dg.Definitions:
    return stage_definitions(build_training_defs)
