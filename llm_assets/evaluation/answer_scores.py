"""Generated answers scored against reference answers with the project's `evaluate` modules.

One `AnswerScores` per model keeps what the paired bootstrap needs: a value per example for the
mean metrics (ROUGE, exact match) and sufficient statistics per example for the corpus metrics
(BLEU, chrF), whose corpus score `bleu_from_stats` / `chrf_from_stats` recompute for any subset.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llm_assets.evaluation.bootstrap import DeltaInterval, Statistic, paired_bootstrap

# Metrics compared between models: name -> what the report calls it.
ANSWER_METRICS = {"rougeL": "ROUGE-L", "bleu": "BLEU", "chrf": "chrF", "exact_match": "exact match"}


@dataclass
class AnswerScores:
    """One model's answers scored against the references, row for row."""

    label: str
    rougeL: np.ndarray
    bleu_stats: np.ndarray
    chrf_stats: np.ndarray
    exact_match: np.ndarray  # only the rows of tasks with one right answer
    corpus: dict[str, float | None]


def score_answers(
    label: str,
    predictions: list[str],
    references: list[str],
    cache_dir: Path,
    exact_match_rows: list[bool] | None = None,
) -> AnswerScores:
    """ROUGE-1/2/L, BLEU, chrF on every row; exact match on the rows flagged in
    `exact_match_rows` (default: every row). Corpus exact match is None when no row is flagged."""
    from llm_assets.evaluation.metrics import load_metric

    if len(predictions) != len(references):
        raise ValueError(f"{label}: {len(predictions)} answers for {len(references)} references")
    rouge = load_metric("rouge", cache_dir).compute(predictions=predictions, references=references)
    bleu = load_metric("bleu", cache_dir).compute(predictions=predictions, references=references)
    chrf = load_metric("chrf", cache_dir).compute(predictions=predictions, references=references)
    flagged = exact_match_rows if exact_match_rows is not None else [True] * len(predictions)
    pairs = [(p, r) for p, r, keep in zip(predictions, references, flagged, strict=True) if keep]
    exact = (
        load_metric("exact_match", cache_dir).compute(
            predictions=[p for p, _ in pairs], references=[r for _, r in pairs]
        )
        if pairs
        else {"exact_match": None, "exact_match_per_example": []}
    )
    return AnswerScores(
        label=label,
        rougeL=np.asarray(rouge["rougeL_per_example"], dtype=float),
        bleu_stats=np.asarray(bleu["stats"], dtype=float).reshape(len(predictions), -1),
        chrf_stats=np.asarray(chrf["stats"], dtype=float).reshape(len(predictions), -1),
        exact_match=np.asarray(exact["exact_match_per_example"], dtype=float),
        corpus={
            "rouge1": rouge["rouge1"],
            "rouge2": rouge["rouge2"],
            "rougeL": rouge["rougeL"],
            "bleu": bleu["bleu"],
            "chrf": chrf["chrf"],
            "exact_match": exact["exact_match"],
        },
    )


def bleu_from_stats(rows: np.ndarray) -> float:
    """Corpus BLEU (sacrebleu defaults, as the `bleu` module) of the rows' summed statistics."""
    from sacrebleu.metrics import BLEU

    summed = [int(value) for value in np.asarray(rows).sum(axis=0)]
    return float(BLEU()._compute_score_from_stats(summed).score)


def chrf_from_stats(rows: np.ndarray) -> float:
    """Corpus chrF (sacrebleu defaults, as the `chrf` module) of the rows' summed statistics."""
    from sacrebleu.metrics import CHRF

    summed = [int(value) for value in np.asarray(rows).sum(axis=0)]
    return float(CHRF()._compute_score_from_stats(summed).score)


def perplexity_from_stats(rows: np.ndarray) -> float:
    """exp(total NLL / total tokens) of rows of [summed answer-token NLL, answer tokens]."""
    total = np.asarray(rows, dtype=float).sum(axis=0)
    return float(np.exp(total[0] / total[1])) if total[1] > 0 else float("nan")


def _per_example(scores: AnswerScores, metric: str) -> tuple[np.ndarray, Statistic | None]:
    if metric == "bleu":
        return scores.bleu_stats, bleu_from_stats
    if metric == "chrf":
        return scores.chrf_stats, chrf_from_stats
    return getattr(scores, metric), None


def answer_deltas(
    tuned: AnswerScores,
    baseline: AnswerScores,
    samples: int,
    confidence: float,
    seed: int = 0,
) -> dict[str, DeltaInterval]:
    """tuned - baseline for each metric of ANSWER_METRICS, with paired bootstrap intervals;
    a metric with no rows (exact match with no single-answer task) is left out."""
    deltas = {}
    for metric in ANSWER_METRICS:
        values_a, statistic = _per_example(tuned, metric)
        values_b, _ = _per_example(baseline, metric)
        if len(values_a) == 0:
            continue
        deltas[metric] = paired_bootstrap(
            values_a, values_b, statistic, samples=samples, confidence=confidence, seed=seed
        )
    return deltas
