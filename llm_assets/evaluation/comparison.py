"""The tuned model against its baseline(s): the metrics of `eval_report`, from the golden
predictions and the perplexity of each model.

Keys follow one pattern, read by the promotion gate and the report:
`golden_<metric>_<label>` and `validation_perplexity_<label>` per model (label: tuned, base,
champion, and sft for a preference-tuned model), `deltas["<metric>_vs_<label>"]` =
{delta, low, high} for tuned minus that model,
`latency_ms_p50_<label>`, `tokens_per_second_<label>`, and the baseline (the champion when one
was compared, else the base model) as `baseline_label` and `golden_rougeL_baseline`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from llm_assets.evaluation.answer_scores import (
    ANSWER_METRICS,
    AnswerScores,
    answer_deltas,
    perplexity_from_stats,
    score_answers,
)
from llm_assets.evaluation.bootstrap import paired_bootstrap
from llm_assets.evaluation.perplexity import PerplexityResult
from llm_assets.evaluation.predictions import answers_by_model, generation_speed
from llm_assets.settings import EvaluationConfig

MODEL_ORDER = ("tuned", "sft", "base", "champion")


def compare_models(
    predictions: pd.DataFrame,
    perplexities: dict[str, dict[str, PerplexityResult]],
    config: EvaluationConfig,
    cache_dir: Path,
) -> dict[str, Any]:
    """Every metric of the comparison. `predictions`: the `golden_predictions` table;
    `perplexities`: label -> split ("validation", "golden") -> result."""
    golden = predictions[predictions["model"] == "tuned"]
    pair_ids = golden["pair_id"].astype(str).to_list()
    references = golden["reference"].astype(str).to_list()
    exact_rows = [
        not config.exact_match_tasks or task in config.exact_match_tasks
        for task in golden["task"].astype(str)
    ]
    answers = answers_by_model(predictions, pair_ids)
    labels = [label for label in MODEL_ORDER if label in answers]
    scores = {
        label: score_answers(label, answers[label], references, cache_dir, exact_rows)
        for label in labels
    }
    # What the challenger must beat: the champion, else the SFT model it was preference-tuned
    # from, else its base.
    baseline = next(label for label in ("champion", "sft", "base") if label in labels)
    metrics: dict[str, Any] = {
        "rows": {
            split: next(iter(perplexities.values()))[split].rows
            for split in ("validation", "golden")
        },
        "exact_match_rows": sum(exact_rows),
        "baseline_label": baseline,
        "confidence": config.confidence,
    }
    for label in labels:
        for metric in ANSWER_METRICS:
            metrics[f"golden_{metric}_{label}"] = scores[label].corpus[metric]
        for split in ("validation", "golden"):
            metrics[f"{split}_perplexity_{label}"] = perplexities[label][split].perplexity
    metrics["golden_rougeL_baseline"] = metrics[f"golden_rougeL_{baseline}"]

    deltas: dict[str, dict[str, float]] = {}
    for other in labels[1:]:
        for metric, interval in answer_deltas(
            scores["tuned"], scores[other], config.bootstrap_samples, config.confidence
        ).items():
            deltas[f"{metric}_vs_{other}"] = interval.as_dict()
        for split, prefix in (("golden", ""), ("validation", "validation_")):
            deltas[f"{prefix}perplexity_vs_{other}"] = paired_bootstrap(
                perplexities["tuned"][split].row_stats,
                perplexities[other][split].row_stats,
                perplexity_from_stats,
                samples=config.bootstrap_samples,
                confidence=config.confidence,
            ).as_dict()
    metrics["deltas"] = deltas

    for label, speed in generation_speed(predictions).items():
        metrics[f"latency_ms_p50_{label}"] = speed["latency_ms_p50"]
        metrics[f"tokens_per_second_{label}"] = speed["tokens_per_second"]
    metrics["worst_examples"] = worst_examples(golden, scores["tuned"], config.worst_examples)
    metrics["side_by_side"] = side_by_side(
        golden, answers, {label: scores[label].rougeL for label in labels}, config.side_by_side
    )
    return metrics


def side_by_side(
    golden: pd.DataFrame,
    answers: dict[str, list[str]],
    rouge_l: dict[str, Any],
    count: int,
) -> list[dict[str, Any]]:
    """`count` golden rows spread evenly over the set (picked by position, never by score, so
    they show typical answers), each with the reference and every model's answer and ROUGE-L."""
    if count == 0 or golden.empty:
        return []
    positions = sorted({round(i * (len(golden) - 1) / max(count - 1, 1)) for i in range(count)})
    return [
        {
            "pair_id": str(golden["pair_id"].iloc[at]),
            "task": str(golden["task"].iloc[at]),
            "conversation": str(golden["conversation"].iloc[at]),
            "reference": str(golden["reference"].iloc[at]),
            "answers": {label: answers[label][at] for label in answers},
            "rougeL": {label: float(rouge_l[label][at]) for label in rouge_l},
        }
        for at in positions
    ]


def worst_examples(golden: pd.DataFrame, tuned: AnswerScores, count: int) -> list[dict[str, Any]]:
    """The `count` tuned answers with the lowest ROUGE-L against their reference."""
    ranked = golden.assign(rougeL=tuned.rougeL).sort_values("rougeL", kind="stable").head(count)
    return [
        {
            "pair_id": str(row.pair_id),
            "task": str(row.task),
            "conversation": str(row.conversation),
            "reference": str(row.reference),
            "answer": str(row.answer),
            "rougeL": float(row.rougeL),
        }
        for row in ranked.itertuples()
    ]


def mode_comparison(
    predictions: pd.DataFrame, config: EvaluationConfig, cache_dir: Path
) -> dict[str, Any]:
    """Closed-book against retrieval: every model's golden metrics and mean groundedness in
    each mode it answered in, paired bootstrap deltas of tuned and base across modes and of
    tuned against base in the mode they were not served in, ROUGE-L of the served tuned model
    by task, and its least grounded answers."""
    golden = predictions[predictions["model"] == "tuned"]
    pair_ids = golden["pair_id"].astype(str).to_list()
    references = golden["reference"].astype(str).to_list()
    answers = answers_by_model(predictions, pair_ids)
    scores = {
        label: score_answers(label, answers[label], references, cache_dir) for label in answers
    }
    other = next((label.split("/", 1)[1] for label in answers if "/" in label), None)
    models = {}
    for label, rows in predictions.groupby("model", sort=False):
        models[str(label)] = {
            "mode": str(rows["mode"].iloc[0]),
            **{metric: scores[str(label)].corpus[metric] for metric in ANSWER_METRICS},
            "groundedness": float(rows["groundedness"].mean()),
        }
    pairs = [("tuned", f"tuned/{other}"), ("base", f"base/{other}")]
    pairs.append((f"tuned/{other}", f"base/{other}"))
    deltas = {
        f"{a} vs {b}": {
            metric: interval.as_dict()
            for metric, interval in answer_deltas(
                scores[a], scores[b], config.bootstrap_samples, config.confidence
            ).items()
        }
        for a, b in pairs
        if other and a in scores and b in scores
    }
    by_task = (
        golden.assign(rougeL=scores["tuned"].rougeL)
        .groupby("task")["rougeL"]
        .agg(["count", "mean"])
        .reset_index()
    )
    least = golden.sort_values("groundedness", kind="stable").head(config.least_grounded)
    return {
        "models": models,
        "deltas": deltas,
        "rougeL_by_task": by_task.rename(columns={"mean": "rougeL"}).to_dict("records"),
        "least_grounded": [
            {
                "pair_id": str(row.pair_id),
                "conversation": str(row.conversation),
                "answer": str(row.answer),
                "groundedness": float(row.groundedness),
            }
            for row in least.itertuples()
        ],
    }
