"""`eval_report`: the tuned model against its base (and the champion), with the promotion
verdict, as Markdown and HTML, logged to the adapter's MLflow run."""

from functools import partial

import dagster as dg
import pandas as pd

from llm_assets.code_versions import AssetSettings
from llm_assets.contracts import (
    Adapter,
    EvalReport,
    HumanReviewScores,
    JudgeScores,
    RagIndex,
    RedTeamReport,
)
from llm_assets.defs.evaluation.predictions import CODE, metric_cache
from llm_assets.defs.metadata import stage_output
from llm_assets.defs.resources import ArtifactStoreResource, MlflowResource
from llm_assets.evaluation.eval_report_run import run_eval_report
from llm_assets.settings import Profile


def eval_report_asset(profile: Profile) -> dg.AssetsDefinition:
    # The report also judges promotion (use_case.criteria): a change to it must re-run it.
    settings = AssetSettings(profile, "eval_report", reads=["evaluation", "use_case"], code=CODE)

    @dg.asset(
        group_name="evaluation",
        code_version=settings.code_version,
        metadata=settings.metadata(),
        kinds={"pytorch", "mlflow"},
    )
    def eval_report(
        context: dg.AssetExecutionContext,
        artifacts: ArtifactStoreResource,
        mlflow: MlflowResource,
        preference_adapter: Adapter,
        golden_predictions: pd.DataFrame,
        human_review_scores: HumanReviewScores,
        judge_scores: JudgeScores,
        redteam_report: RedTeamReport,
        rag_index: RagIndex,
        fact_answers: pd.DataFrame,
    ) -> dg.Output[EvalReport]:
        """Tuned vs base (and champion): perplexity on validation and golden, ROUGE-L, BLEU,
        chrF and exact match on the golden answers with paired bootstrap intervals, generation
        speed, human and LLM-judge scores, red-team pass rates and the promotion verdict; a
        Markdown and an HTML report, logged to the adapter's MLflow run. Rendered from what
        `golden_predictions` stored (answers and perplexities): no model is loaded here."""
        profile = settings.profile
        made = run_eval_report(
            preference_adapter,
            golden_predictions,
            human_review_scores,
            judge_scores,
            redteam_report,
            rag_index,
            fact_answers,
            config=profile.evaluation,
            criteria=profile.use_case.criteria,
            metric_cache=metric_cache(artifacts),
            folders=artifacts,
            run_id=context.run.run_id,
            mlflow=mlflow,
            start_run=partial(mlflow.start_run, context),
        )
        return stage_output(made)

    return eval_report
