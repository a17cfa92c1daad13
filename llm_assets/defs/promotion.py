"""The red team, the Model Registry and the promotion gate.

`redteam_report` (group evaluation) runs the adversarial suite on the tuned adapter;
`registered_challenger` registers the adapter as a version with alias `challenger`;
`champion_model` moves alias `champion` to it when `eval_report` meets the use case's criteria.
The gate check warns, never blocks: a challenger that is not better is a normal outcome of a
retraining loop, not a broken run.
"""

from functools import partial
from typing import Any

import dagster as dg

from llm_assets.code_versions import AssetSettings
from llm_assets.contracts import (
    Adapter,
    EvalReport,
    PromotionOutcome,
    RagIndex,
    RedTeamReport,
    RegisteredVersion,
)
from llm_assets.defs.location import stage_definitions
from llm_assets.defs.metadata import stage_output
from llm_assets.defs.resources import MlflowResource
from llm_assets.evaluation.config import PromotionCriteria
from llm_assets.evaluation.promotion import judge_promotion
from llm_assets.evaluation.redteam_run import run_redteam_report, suite_digest
from llm_assets.promotion.challenger import run_challenger_registration
from llm_assets.promotion.champion import EvaluatedAnotherAdapter, run_promotion_gate
from llm_assets.settings import Profile

REGISTRY_CODE = ["evaluation/registry.py", "stage_output.py", "defs/promotion.py"]


def redteam_report_asset(profile: Profile) -> dg.AssetsDefinition:
    settings = AssetSettings(
        profile,
        "redteam_report",
        reads=[
            "redteam",
            "evaluation.generation",
            "evaluation.engine",
            "model.kind",
            "guardrails",
            "cleaning.pii_allow_list",
            "datasets.system_prompt",
        ],
        code=["evaluation", "defs/promotion.py", "serving/guardrails.py", "rag/context.py"],
        extra=suite_digest(profile.redteam, profile.base_dir),
    )

    @dg.asset(
        group_name="evaluation",
        code_version=settings.code_version,
        metadata=settings.metadata(),
        kinds={"pytorch", "mlflow"},
    )
    def redteam_report(
        context: dg.AssetExecutionContext,
        mlflow: MlflowResource,
        preference_adapter: Adapter,
        rag_index: RagIndex,
    ) -> dg.Output[RedTeamReport]:
        """The tuned model on the red-team suite, asked as it is served (with `rag_index`
        context when it was trained with it): pass rates per category, canaries reproduced,
        PII values in answers, and the failing prompts with their answers."""
        profile = settings.profile
        made = run_redteam_report(
            preference_adapter,
            rag_index,
            redteam=profile.redteam,
            evaluation=profile.evaluation,
            guardrails=profile.guardrails,
            system_prompt=profile.datasets.system_prompt,
            pii_allow_list=profile.cleaning.pii_allow_list,
            model_kind=profile.model.kind,
            base_dir=profile.base_dir,
            mlflow=mlflow,
            start_run=partial(mlflow.start_run, context),
        )
        return stage_output(made)

    return redteam_report


def registered_challenger_asset(profile: Profile) -> dg.AssetsDefinition:
    # Registered under use_case.registered_model_name, described with use_case.name.
    settings = AssetSettings(
        profile,
        "registered_challenger",
        reads=["use_case.name", "use_case.registered_model_name"],
        code=[*REGISTRY_CODE, "promotion/challenger.py"],
    )

    @dg.asset(
        group_name="promotion",
        code_version=settings.code_version,
        metadata=settings.metadata(),
        kinds={"mlflow"},
    )
    def registered_challenger(
        context: dg.AssetExecutionContext, mlflow: MlflowResource, preference_adapter: Adapter
    ) -> dg.Output[RegisteredVersion]:
        """The adapter as a version of the use case's registered model, alias `challenger`,
        tagged with its base model, method, folder, weights digest and runs. Weights already
        registered are not registered twice: their version becomes the challenger."""
        made = run_challenger_registration(
            preference_adapter,
            settings.profile.use_case,
            mlflow=mlflow,
            dagster_run_id=context.run.run_id,
        )
        return stage_output(made)

    return registered_challenger


def champion_model_asset(profile: Profile) -> dg.AssetsDefinition:
    settings = AssetSettings(
        profile,
        "champion_model",
        reads=["use_case"],
        code=[*REGISTRY_CODE, "evaluation/promotion.py", "promotion/champion.py"],
    )

    @dg.asset(
        group_name="promotion",
        code_version=settings.code_version,
        metadata=settings.metadata(),
        kinds={"mlflow"},
    )
    def champion_model(
        context: dg.AssetExecutionContext,
        mlflow: MlflowResource,
        eval_report: EvalReport,
        registered_challenger: RegisteredVersion,
    ) -> dg.Output[PromotionOutcome]:
        """The version holding alias `champion` after the promotion gate: the challenger when
        `eval_report` meets every criterion of `use_case.criteria`, else the champion as it was
        (the metadata names the criteria that failed)."""
        try:
            made = run_promotion_gate(
                eval_report,
                registered_challenger,
                settings.profile.use_case,
                mlflow=mlflow,
                log=context.log.info,
                warn=context.log.warning,
            )
        except EvaluatedAnotherAdapter as error:
            raise dg.Failure(str(error)) from error
        return stage_output(made)

    return champion_model


def use_case_criteria_check(criteria: PromotionCriteria) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset="eval_report",
        blocking=False,
        description="The tuned model meets every promotion criterion of the use case "
        "(use_case.criteria). Warns, never blocks: a challenger that is not better than the "
        "champion is a normal outcome of retraining, and champion_model then keeps the "
        "champion.",
    )
    def eval_report_meets_use_case_criteria(eval_report: EvalReport) -> dg.AssetCheckResult:
        decision = judge_promotion(eval_report, criteria)
        return dg.AssetCheckResult(
            passed=decision.passed,
            severity=dg.AssetCheckSeverity.WARN,
            description=decision.summary(),
            metadata={
                "criteria": dg.MetadataValue.md(decision.to_markdown()),
                "failed_criteria": dg.MetadataValue.json([c.name for c in decision.failed]),
            },
        )

    return eval_report_meets_use_case_criteria


def build_promotion_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
    return (
        [
            redteam_report_asset(profile),
            registered_challenger_asset(profile),
            champion_model_asset(profile),
        ],
        [use_case_criteria_check(profile.use_case.criteria)],
    )


@dg.definitions
def promotion_definitions() -> dg.Definitions:
    return stage_definitions(build_promotion_defs)
