"""The `eval_report` step: the tuned model against its base (and the champion) on perplexity,
the golden answers with paired bootstrap intervals, speed, grounding, human scores and the red
team; the promotion verdict; the report as Markdown and HTML, logged to the adapter's MLflow
run."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

from llm_assets.contracts import (
    Adapter,
    EvalReport,
    HumanReviewScores,
    JudgeScores,
    Link,
    Markdown,
    PromotionVerdict,
    RagIndex,
    RedTeamReport,
)
from llm_assets.evaluation.config import EvaluationConfig, PromotionCriteria
from llm_assets.evaluation.eval_report_contents import (
    adapter_fields,
    grounding_metrics,
    human_fields,
    mlflow_metrics,
    redteam_fields,
)
from llm_assets.evaluation.promotion import judge_promotion
from llm_assets.stage_output import ArtifactFolders, MlflowStore, StageOutput, StartMlflowRun

ASSET = "eval_report"
# What the asset page shows of the report's numbers, beside the report itself.
HEADLINE_METRICS = ("golden_rougeL_tuned", "golden_rougeL_baseline")


def run_eval_report(
    qlora_adapter: Adapter,
    golden_predictions: pd.DataFrame,
    human_review_scores: HumanReviewScores,
    judge_scores: JudgeScores,
    redteam_report: RedTeamReport,
    rag_index: RagIndex,
    fact_answers: pd.DataFrame,
    *,
    config: EvaluationConfig,
    criteria: PromotionCriteria,
    metric_cache: Path,
    folders: ArtifactFolders,
    run_id: str,
    mlflow: MlflowStore,
    start_run: StartMlflowRun,
) -> StageOutput[EvalReport]:
    """The report judged against `criteria`, its files (report.md, report.html, the figures,
    metrics.json) in the `eval_report` folder of `run_id` and under `eval/` of the adapter's
    MLflow run, with its numbers as `eval.*` metrics. Every number comes from the stored
    answers and perplexities: no model is loaded here."""
    import mlflow as mlflow_client

    from llm_assets.evaluation.comparison import compare_models
    from llm_assets.evaluation.predictions import stored_perplexities
    from llm_assets.evaluation.report import render_eval_report

    served = golden_predictions[~golden_predictions["model"].str.contains("/")]
    answered = served.loc[served["model"] == "tuned", "pair_id"].astype(str).to_list()
    perplexities = stored_perplexities(served, answered)
    report_dir = folders.folder(ASSET, run_id)
    measured = EvalReport.model_validate(
        {
            **compare_models(served, perplexities, config, metric_cache),
            **grounding_metrics(golden_predictions, rag_index, fact_answers, config, metric_cache),
            **adapter_fields(qlora_adapter, served),
            **redteam_fields(redteam_report),
            **human_fields(human_review_scores),
            "judge": judge_scores.summary(),
            "decoding": config.generation.describe(),
            "report_path": str(report_dir / "report.md"),
            "report_html_path": str(report_dir / "report.html"),
        }
    )
    decision = judge_promotion(measured, criteria)
    verdict = PromotionVerdict(
        passed=decision.passed, summary=decision.summary(), criteria=decision.as_rows()
    )
    report = measured.model_copy(update={"promotion": verdict})
    # The report's own files hold its contents, not where they are.
    contents = report.model_dump(exclude={"report_path", "report_html_path"})
    markdown, ui_markdown, page, figures = render_eval_report(
        contents, _loss_history(mlflow, qlora_adapter.mlflow_run_id)
    )
    with folders.new_folder(ASSET, run_id) as folder:
        (folder / "report.md").write_text(markdown, encoding="utf-8")
        (folder / "report.html").write_text(page, encoding="utf-8")
        for figure in figures:
            (folder / f"{figure.name}.png").write_bytes(figure.png)
        (folder / "metrics.json").write_text(json.dumps(contents, indent=2, default=str))
    numeric = mlflow_metrics(report)
    with start_run(ASSET, run_id=qlora_adapter.mlflow_run_id) as run:
        mlflow_client.log_metrics(numeric)
        mlflow_client.log_artifacts(str(report_dir), artifact_path="eval")
    linked = _log_answers_table(
        mlflow_client,
        golden_predictions,
        report,
        qlora_adapter,
        (run.info.run_id, run_id),
        metric_cache,
    )
    shown: dict[str, object] = {
        "report": Markdown(ui_markdown),
        "report_path": Path(report.report_path),
        "report_html": Path(report.report_html_path),
        "mlflow_run": Link(mlflow.run_url(run)),
        "promotion": decision.summary(),
        "answers_table": f"{linked['table_artifact']} ({linked['linked']}"
        + (f", model {linked['model_id']})" if linked["model_id"] else f": {linked['reason']})"),
        **{key: round(numeric[f"eval.{key}"], 4) for key in HEADLINE_METRICS},
    }
    return StageOutput(report, shown)


def _log_answers_table(
    mlflow_client: Any,
    golden_predictions: pd.DataFrame,
    report: EvalReport,
    adapter: Adapter,
    run_ids: tuple[str, str],
    metric_cache: Path,
) -> dict[str, str]:
    """Every model's golden answers with their ROUGE-L and groundedness as an MLflow table of
    the adapter's run (one file per evaluation, so re-evaluating adds a table, never rows to an
    old one), and the tuned model's figures on the logged model it was trained into, so the
    MLflow UI shows that model's evaluation (and every version registered from it).
    `run_ids`: (the MLflow run, the Dagster run)."""
    from llm_assets.evaluation.answer_scores import score_answers
    from llm_assets.evaluation.mlflow_evaluation import log_evaluation_table
    from llm_assets.evaluation.predictions import PERPLEXITY_COLUMNS

    rows = (
        golden_predictions.drop(columns=PERPLEXITY_COLUMNS, errors="ignore")
        .rename(columns={"conversation": "prompt"})
        .reset_index(drop=True)
    )
    rouge = pd.Series(0.0, index=rows.index)
    for label, group in rows.groupby("model", sort=False):
        scores = score_answers(
            str(label),
            group["answer"].astype(str).to_list(),
            group["reference"].astype(str).to_list(),
            metric_cache,
        )
        rouge[group.index] = scores.rougeL
    tuned = {
        "golden_rougeL": report.golden_rougeL_tuned,
        "golden_perplexity": report.golden_perplexity_tuned,
        "redteam_pass_rate": report.redteam_pass_rate,
        "facts_stated_share": report.facts_stated_share,
    }
    mlflow_run_id, dagster_run_id = run_ids
    return log_evaluation_table(
        mlflow_client,
        rows.assign(rouge_l=rouge),
        run_id=mlflow_run_id,
        metrics={
            f"eval.{name}": float(value)
            for name, value in tuned.items()
            if value is not None and math.isfinite(value)
        },
        model_uri=adapter.mlflow_model_uri or "",
        artifact_file=f"eval/golden_answers-{dagster_run_id[:8]}.json",
    )


def _loss_history(mlflow: MlflowStore, run_id: str) -> list[tuple[int, float]]:
    """The training loss of the adapter's MLflow run, step by step."""
    client: Any = mlflow.tracking().MlflowClient()
    return [(int(m.step), float(m.value)) for m in client.get_metric_history(run_id, "loss")]
