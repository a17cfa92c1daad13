"""Group `export`: the adapter merged into its base, then quantized copies, each re-loaded and
measured against the merged model."""

from functools import partial
from typing import Any

import dagster as dg
import pandas as pd

from llm_assets.code_versions import AssetSettings
from llm_assets.contracts import Adapter, ExportedCopies, MergedModel
from llm_assets.defs.evaluation import metric_cache
from llm_assets.defs.location import stage_definitions
from llm_assets.defs.metadata import stage_output
from llm_assets.defs.resources import ArtifactStoreResource, MlflowResource
from llm_assets.export.config import ExportConfig
from llm_assets.export.merge import CannotMerge
from llm_assets.export.merged_model_run import run_merge
from llm_assets.export.quantize import ExportUnavailable, exports_answering_worse
from llm_assets.export.quantized_export_run import (
    CHECK_ROWS,
    export_template_differences,
    golden_conversations,
    run_quantized_export,
)
from llm_assets.settings import Profile


def merged_model_asset(profile: Profile) -> dg.AssetsDefinition:
    # The merged model card names the use case and the license.
    settings = AssetSettings(
        profile,
        "merged_model",
        reads=["model.license", "use_case.name"],
        code=["export/merge.py", "export/merged_model_run.py", "defs/export.py"],
    )

    @dg.asset(
        group_name="export",
        code_version=settings.code_version,
        metadata=settings.metadata(),
        kinds={"pytorch", "safetensors"},
    )
    def merged_model(
        context: dg.AssetExecutionContext,
        artifacts: ArtifactStoreResource,
        preference_adapter: Adapter,
    ) -> dg.Output[MergedModel]:
        """The adapter folded into its full-precision base: one safetensors model with the
        training tokenizer and chat template, and a model card naming where it came from."""
        profile = settings.profile
        try:
            made = run_merge(
                preference_adapter,
                profile.model.license,
                profile.use_case.name,
                folders=artifacts,
                run_id=context.run.run_id,
            )
        except CannotMerge as error:
            raise dg.Failure(str(error)) from error
        return stage_output(made)

    return merged_model


def quantized_export_asset(profile: Profile) -> dg.AssetsDefinition:
    settings = AssetSettings(
        profile,
        "quantized_export",
        reads=[
            "export",
            "evaluation.generation",
            "datasets.system_prompt",
            "datasets.max_length",
            "model.kind",
        ],
        code=["export", "defs/export.py"],
    )

    @dg.asset(
        group_name="export",
        code_version=settings.code_version,
        metadata=settings.metadata(),
        kinds={"pytorch", "mlflow", "gguf"},
    )
    def quantized_export(
        context: dg.AssetExecutionContext,
        artifacts: ArtifactStoreResource,
        mlflow: MlflowResource,
        merged_model: MergedModel,
        golden_set: pd.DataFrame,
        sft_dataset: Any,
    ) -> dg.Output[ExportedCopies]:
        """One quantized copy per `export.formats`. Each is loaded back from disk and measured
        on the same golden conversations as the merged model: size, load time, tokens/s,
        perplexity and golden ROUGE-L, and their deltas, so a copy that answers worse shows it.
        GGUF copies (llama.cpp) are measured through llama.cpp, with the same tokens."""
        profile = settings.profile
        try:
            made = run_quantized_export(
                merged_model,
                golden_set,
                sft_dataset,
                config=profile.export,
                generation=profile.evaluation.generation,
                max_length=profile.datasets.max_length,
                system_prompt=profile.datasets.system_prompt,
                model_kind=profile.model.kind,
                metric_cache=metric_cache(artifacts),
                folders=artifacts,
                run_id=context.run.run_id,
                start_mlflow_run=partial(mlflow.start_run, context),
                log=context.log.info,
            )
        except ExportUnavailable as error:
            raise dg.Failure(str(error)) from error
        return stage_output(made)

    return quantized_export


@dg.asset_check(
    asset="quantized_export",
    additional_ins={
        "preference_adapter": dg.AssetIn("preference_adapter"),
        "golden_set": dg.AssetIn(),
    },
    blocking=True,
    description="The merged model and every export carry the chat template the adapter was "
    "trained with.",
)
def quantized_export_keeps_training_chat_template(
    quantized_export: ExportedCopies, preference_adapter: Adapter, golden_set: pd.DataFrame
) -> dg.AssetCheckResult:
    problems = export_template_differences(
        quantized_export.exports,
        preference_adapter.path,
        golden_conversations(golden_set, CHECK_ROWS),
    )
    return dg.AssetCheckResult(
        passed=not any(problems.values()),
        description=", ".join(f"{fmt}: {len(p)} differences" for fmt, p in problems.items()),
        metadata={"differences": dg.MetadataValue.json(problems)},
    )


def answers_like_merged_model_check(config: ExportConfig) -> dg.AssetChecksDefinition:
    tolerances = (config.max_perplexity_increase, config.max_rouge_l_drop)

    @dg.asset_check(
        asset="quantized_export",
        description="No export answers the golden set much worse than the merged model: "
        "perplexity and ROUGE-L within export.max_perplexity_increase / max_rouge_l_drop.",
    )
    def quantized_export_answers_like_merged_model(
        quantized_export: ExportedCopies,
    ) -> dg.AssetCheckResult:
        worse = exports_answering_worse(quantized_export.exports, *tolerances)
        return dg.AssetCheckResult(
            passed=not worse,
            severity=dg.AssetCheckSeverity.WARN,
            description="; ".join(worse) or "every export within tolerance of the merged model",
            metadata={"exports_answering_worse": len(worse)},
        )

    return quantized_export_answers_like_merged_model


def build_export_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
    return (
        [merged_model_asset(profile), quantized_export_asset(profile)],
        [
            quantized_export_keeps_training_chat_template,
            answers_like_merged_model_check(profile.export),
        ],
    )


@dg.definitions
def export_definitions() -> dg.Definitions:
    return stage_definitions(build_export_defs)
