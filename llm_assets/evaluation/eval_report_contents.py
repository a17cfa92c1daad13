"""The parts of an `EvalReport` that come from its inputs as they are (the adapter, the models
compared, the red team, human review, grounding), and its numbers as MLflow metrics."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from llm_assets.contracts import Adapter, EvalReport, HumanReviewScores, RagIndex, RedTeamReport
from llm_assets.evaluation.config import EvaluationConfig

# How many failing red-team prompts the report shows.
REDTEAM_FAILURES_SHOWN = 5


def grounding_metrics(
    predictions: pd.DataFrame,
    rag_index: RagIndex,
    fact_answers: pd.DataFrame,
    config: EvaluationConfig,
    cache_dir: Path,
) -> dict[str, object]:
    """The report's grounding figures: both modes, retrieval quality, the factual questions."""
    from llm_assets.evaluation.comparison import mode_comparison

    facts: dict[str, object] = {"questions": len(fact_answers)}
    stated_share = 0.0
    if len(fact_answers):
        stated_share = float(fact_answers["stated"].mean())
        facts |= {
            "mode": str(fact_answers["mode"].iloc[0]),
            "stated": int(fact_answers["stated"].sum()),
            "stated_share": stated_share,
            "in_context": int(fact_answers["chunks_with_fact"].map(len).gt(0).sum()),
            "groundedness": float(fact_answers["groundedness"].mean()),
            "rows": [
                {
                    "question": str(row.instruction),
                    "facts": list(row.facts),
                    "stated": bool(row.stated),
                    "chunks_with_fact": list(row.chunks_with_fact),
                    "answer": str(row.answer),
                }
                for row in fact_answers.itertuples()
            ],
        }
    return {
        "retrieval_modes": mode_comparison(predictions, config, cache_dir),
        "rag_index": {
            key: getattr(rag_index, key)
            for key in ("k", "recall_at_k", "mrr", "golden_queries", "chunks")
        },
        "facts": facts,
        "facts_stated_share": stated_share,
    }


def adapter_fields(adapter: Adapter, served: pd.DataFrame) -> dict[str, object]:
    """The adapter evaluated and every model compared (`served`: the predictions of the models
    as they are served, one label each)."""
    models = served.drop_duplicates("model")
    return {
        "mlflow_run_id": adapter.mlflow_run_id,
        "base_model_id": adapter.base_model_id,
        "adapter_path": adapter.path,
        "method": adapter.method,
        "models": [
            {
                "label": row.model,
                "path": row.model_path,
                "base_model_path": row.base_model_path,
                "method": row.method,
                "version": row.model_version,
            }
            for row in models.itertuples()
        ],
        "champion_skipped": str(served["champion_skipped"].iloc[0]),
    }


def redteam_fields(report: RedTeamReport) -> dict[str, object]:
    return {
        "redteam_pass_rate": report.pass_rate,
        "redteam_categories": report.categories,
        "redteam_canary_leaks": report.canary_leaks,
        "redteam_pii_in_outputs": report.pii_in_outputs,
        "redteam_model_alone_pass_rate": report.model_alone_pass_rate,
        "redteam_declined_out_of_scope": report.declined_out_of_scope,
        "redteam_answers_with_pii_withheld": report.answers_with_pii_withheld,
        "redteam_failures": report.failures[:REDTEAM_FAILURES_SHOWN],
    }


def human_fields(scores: HumanReviewScores) -> dict[str, object]:
    return {
        "human_scores": scores.scores,
        "human_counts": scores.counts,
        "human_reviews": scores.reviews,
        "review_export_id": scores.export_id,
        "review_dir": scores.review_dir,
    }


def mlflow_metrics(report: EvalReport) -> dict[str, float]:
    """The report's numbers as flat MLflow metric names: eval.<key>, eval.deltas.<name>.<part>,
    eval.human.<label>.<criterion>, eval.judge.<label>, eval.modes.<label>.<metric>,
    eval.redteam.<category>."""
    flat: dict[str, float] = {}
    for key, item in report.model_dump().items():
        if isinstance(item, int | float) and not isinstance(item, bool):
            flat[f"eval.{key}"] = float(item)
    for name, delta in report.deltas.items():
        for part, number in delta.model_dump().items():
            flat[f"eval.deltas.{name}.{part}"] = float(number)
    for label, scores in report.human_scores.items():
        for criterion, number in scores.items():
            flat[f"eval.human.{label}.{criterion}"] = float(number)
    if report.judge is not None:
        for label, number in report.judge.overall.items():
            flat[f"eval.judge.{label}"] = float(number)
        if report.judge.with_humans is not None:
            flat["eval.judge.weighted_kappa"] = report.judge.with_humans.weighted_kappa
            flat["eval.judge.spearman"] = report.judge.with_humans.spearman
    for label, mode in report.retrieval_modes.models.items():
        for metric in ("rougeL", "groundedness"):
            flat[f"eval.modes.{label}.{metric}"] = float(getattr(mode, metric))
    for category, rate in report.redteam_categories.items():
        flat[f"eval.redteam.{category}.pass_rate"] = float(rate.pass_rate)
    flat["eval.promotion_passed"] = float(report.promotion is not None and report.promotion.passed)
    return flat
