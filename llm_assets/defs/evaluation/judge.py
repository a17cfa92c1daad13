"""`judge_scores`: an LLM judge scores the served golden answers on the human review rubric,
calibrated against the reviewers' scores of the same answers."""

import hashlib

import dagster as dg
import pandas as pd

from llm_assets.code_versions import AssetSettings
from llm_assets.contracts import HumanReviewScores, JudgeScores
from llm_assets.datasets.teacher import TeacherError
from llm_assets.defs.evaluation.predictions import CODE
from llm_assets.defs.metadata import stage_output
from llm_assets.defs.resources import ArtifactStoreResource
from llm_assets.evaluation.judge_run import run_judge_scores
from llm_assets.settings import Profile


def judge_scores_asset(profile: Profile) -> dg.AssetsDefinition:
    settings = AssetSettings(
        profile,
        "judge_scores",
        reads=["evaluation.judge", "evaluation.bootstrap_samples", "evaluation.confidence"],
        runtime=["evaluation.judge.timeout_s", "evaluation.judge.api_key_env"],
        code=CODE,
    )

    @dg.asset(
        group_name="evaluation",
        code_version=settings.code_version,
        metadata=settings.metadata(),
        kinds={"pandas"},
    )
    def judge_scores(
        artifacts: ArtifactStoreResource,
        golden_predictions: pd.DataFrame,
        human_review_scores: HumanReviewScores,
    ) -> dg.Output[JudgeScores]:
        """An LLM judge (evaluation.judge, any OpenAI-compatible endpoint) scores each served
        golden answer 1-5 for accuracy, helpfulness, tone and factual correctness; its
        agreement with the human reviewers (weighted kappa, Spearman, bootstrap intervals)
        decides whether the promotion gate counts it. Off by default: then it only reports
        how the reviewers agree with each other."""
        config = settings.profile.evaluation
        endpoint = f"{config.judge.url}\x00{config.judge.model}".encode()
        cache = artifacts.work_dir("judge_cache", hashlib.sha256(endpoint).hexdigest()[:16])
        try:
            made = run_judge_scores(
                golden_predictions,
                human_review_scores,
                config.judge,
                bootstrap_samples=config.bootstrap_samples,
                confidence=config.confidence,
                cache_dir=cache,
            )
        except TeacherError as error:
            raise dg.Failure(description=f"The LLM judge cannot be used: {error}") from error
        return stage_output(made)

    return judge_scores
