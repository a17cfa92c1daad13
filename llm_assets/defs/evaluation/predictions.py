"""`golden_predictions` and `human_review_scores`: every model's answers to the golden prompts,
the blinded review files, and the scores reviewers write into them."""

from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from llm_assets.code_versions import AssetSettings
from llm_assets.contracts import Adapter, HumanReviewScores, RagIndex
from llm_assets.defs.check_results import preview
from llm_assets.defs.metadata import stage_output
from llm_assets.defs.resources import ArtifactStoreResource, MlflowResource
from llm_assets.evaluation.golden_predictions_run import (
    PREVIEW_COLUMNS,
    review_folder,
    run_golden_predictions,
)
from llm_assets.evaluation.human_review_run import MalformedReviewFile, run_human_review_scores
from llm_assets.settings import Profile

CODE = ["evaluation", "defs/evaluation"]


def metric_cache(artifacts: ArtifactStoreResource) -> Path:
    """Where `evaluate` copies the project's metric modules: inside the state folder."""
    return Path(artifacts.base_dir).parent / "cache" / "evaluate"


def predictions_settings(profile: Profile) -> AssetSettings[Profile]:
    # Generation re-runs only for the settings it reads, not for a new bootstrap size;
    # perplexity is scored here too, at datasets.max_length.
    evaluation = ("max_eval_rows", "engine", "generation", "compare_with_champion")
    return AssetSettings(
        profile,
        "golden_predictions",
        reads=[
            *(f"evaluation.{name}" for name in (*evaluation, "review_dir", "review_seed")),
            "model.kind",
            "datasets.max_length",
            "use_case.registered_model_name",
            "serving.rag_k",
            "serving.rag_max_chars",
            "datasets.system_prompt",
            "guardrails",
            "cleaning.pii_allow_list",
        ],
        code=[*CODE, "serving/guardrails.py", "rag/context.py"],
    )


def golden_predictions_asset(profile: Profile) -> dg.AssetsDefinition:
    settings = predictions_settings(profile)

    @dg.asset(
        group_name="evaluation",
        code_version=settings.code_version,
        metadata=settings.metadata(),
        kinds={"pytorch", "mlflow"},
    )
    def golden_predictions(
        context: dg.AssetExecutionContext,
        artifacts: ArtifactStoreResource,
        mlflow: MlflowResource,
        preference_adapter: Adapter,
        golden_set: pd.DataFrame,
        rag_index: RagIndex,
        sft_dataset: Any,
    ) -> dg.Output[pd.DataFrame]:
        """Answers to every golden prompt from the tuned model, its base and the MLflow
        `champion` (when one exists), one row per prompt and model with tokens and timings; and
        the blinded A/B review files (tuned vs champion, else base) in the review folder.
        Each model answers as it is served (with `rag_index` context when it was trained with
        it); tuned and base also answer in the other mode (`tuned/closed-book` or
        `tuned/retrieval`), so the report shows what retrieval adds. Each model's perplexity on
        the golden and validation (`sft_dataset`) answers is measured on the same load."""
        profile = settings.profile
        made = run_golden_predictions(
            preference_adapter,
            golden_set,
            rag_index,
            sft_dataset,
            config=profile.evaluation,
            max_length=profile.datasets.max_length,
            serving=profile.serving,
            guardrails=profile.guardrails,
            system_prompt=profile.datasets.system_prompt,
            pii_allow_list=profile.cleaning.pii_allow_list,
            registered_model_name=profile.use_case.registered_model_name,
            model_kind=profile.model.kind,
            review_dir=review_folder(
                profile.evaluation, profile.base_dir, Path(artifacts.base_dir)
            ),
            folders=artifacts,
            run_id=context.run.run_id,
            mlflow=mlflow,
            warn=context.log.warning,
        )
        return stage_output(made, preview=preview(made.value, PREVIEW_COLUMNS, rows=6))

    return golden_predictions


def human_review_scores_asset(profile: Profile) -> dg.AssetsDefinition:
    settings = AssetSettings(
        profile, "human_review_scores", reads=["evaluation.review_dir"], code=CODE
    )

    @dg.asset(
        group_name="evaluation",
        code_version=settings.code_version,
        metadata=settings.metadata(),
        kinds={"pandas"},
    )
    def human_review_scores(
        artifacts: ArtifactStoreResource, golden_predictions: pd.DataFrame
    ) -> dg.Output[HumanReviewScores]:
        """Scores reviewers wrote into the review files of the current export (1-5 for
        accuracy, helpfulness, tone and factual correctness), validated and unblinded into mean
        scores per model. Materialize it again after reviewers save their files."""
        profile = settings.profile
        review_dir = review_folder(profile.evaluation, profile.base_dir, Path(artifacts.base_dir))
        try:
            made = run_human_review_scores(golden_predictions, review_dir)
        except MalformedReviewFile as error:
            raise dg.Failure(
                description=str(error),
                metadata={"review_dir": dg.MetadataValue.path(str(error.review_dir))},
            ) from error
        return stage_output(made)

    return human_review_scores
