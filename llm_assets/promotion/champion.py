"""The `champion_model` step: the promotion gate applied to `eval_report`; alias `champion`
moves to the challenger when it meets every criterion of the use case."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llm_assets.contracts import EvalReport, Link, Markdown, PromotionOutcome, RegisteredVersion
from llm_assets.evaluation.config import UseCaseConfig
from llm_assets.evaluation.promotion import PromotionDecision, judge_promotion
from llm_assets.evaluation.registry import CHAMPION, set_alias, version_by_alias
from llm_assets.stage_output import MlflowStore, StageOutput

# Metrics of eval_report copied onto the registered version, so versions compare side by side.
VERSION_METRICS = (
    "golden_rougeL_tuned",
    "golden_rougeL_baseline",
    "golden_perplexity_tuned",
    "golden_perplexity_base",
    "redteam_pass_rate",
)


class EvaluatedAnotherAdapter(ValueError):
    """`eval_report` judged another adapter than the challenger's: the gate must not decide on
    it."""


def run_promotion_gate(
    eval_report: EvalReport,
    registered_challenger: RegisteredVersion,
    use_case: UseCaseConfig,
    *,
    mlflow: MlflowStore,
    log: Callable[[str], None],
    warn: Callable[[str], None],
) -> StageOutput[PromotionOutcome]:
    """The gate's verdict on `eval_report` under `use_case.criteria`: alias `champion` moved to
    the challenger when it passed, the verdict and the headline metrics tagged on the version
    and the verdict on the adapter's MLflow run. Raises `EvaluatedAnotherAdapter` when the
    report is not of the challenger's adapter."""
    model_name = use_case.registered_model_name
    evaluated = eval_report.mlflow_run_id
    if evaluated and evaluated != registered_challenger.adapter_mlflow_run_id:
        raise EvaluatedAnotherAdapter(
            f"eval_report evaluated the adapter of MLflow run {evaluated}, but the challenger "
            f"is the adapter of run {registered_challenger.adapter_mlflow_run_id}; "
            "materialize eval_report for the current qlora_adapter first"
        )
    decision = judge_promotion(eval_report, use_case.criteria)
    tracking = mlflow.tracking()
    challenger = registered_challenger.version
    previous = version_by_alias(tracking, model_name, CHAMPION)
    previous_version = str(previous.version) if previous is not None else None
    if decision.passed:
        set_alias(tracking, model_name, CHAMPION, challenger)
    champion = challenger if decision.passed else previous_version
    _tag_verdict(tracking, model_name, eval_report, registered_challenger, decision)
    if decision.passed:
        log(f"{model_name} v{challenger} is the new champion")
    else:
        warn(f"{model_name} v{challenger} not promoted: {decision.summary()}")
    outcome = PromotionOutcome(
        model_name=model_name,
        promoted=decision.passed,
        champion_version=champion,
        previous_champion_version=previous_version,
        challenger_version=challenger,
        failed_criteria=[c.name for c in decision.failed],
        criteria=decision.as_rows(),
    )
    shown: dict[str, object] = {
        "promoted": decision.passed,
        "champion_version": champion or "none",
        "previous_champion_version": previous_version or "none",
        "challenger_version": challenger,
        "failed_criteria": ", ".join(outcome.failed_criteria) or "none",
        "decision": decision.summary(),
        "criteria": Markdown(decision.to_markdown()),
        "registry": Link(mlflow.model_version_url(model_name, champion or challenger)),
    }
    return StageOutput(outcome, shown)


def _tag_verdict(
    tracking: Any,
    model_name: str,
    eval_report: EvalReport,
    challenger: RegisteredVersion,
    decision: PromotionDecision,
) -> None:
    """The verdict (and the headline metrics) on the challenger's version, the verdict on the
    adapter's MLflow run."""
    client = tracking.MlflowClient()
    gate = "passed" if decision.passed else "failed: " + ", ".join(c.name for c in decision.failed)
    version = challenger.version
    client.set_model_version_tag(model_name, version, "promotion_gate", gate)
    for key in VERSION_METRICS:
        value = getattr(eval_report, key)
        if isinstance(value, int | float):
            client.set_model_version_tag(model_name, version, f"eval.{key}", f"{value:.6g}")
    client.set_tag(challenger.adapter_mlflow_run_id, "promotion_gate", gate)
