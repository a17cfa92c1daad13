"""Paired bootstrap: is model A better than model B on the same examples, or is it noise?

Both models answered the same examples, so each resample draws example indices once and scores
both models on that same draw (Koehn 2004; sacrebleu's `--paired-bs`). For a metric that is a
mean over examples (ROUGE-L, exact match) a resample's score is the mean of its rows; for a
corpus metric (BLEU, chrF, perplexity) it is recomputed from the rows' summed sufficient
statistics, never averaged from sentence scores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

# A corpus score from the rows of a (resampled) table of per-example values or statistics.
Statistic = Callable[[np.ndarray], float]


@dataclass(frozen=True)
class DeltaInterval:
    """score(A) - score(B) on all examples, and the bootstrap interval around it."""

    delta: float
    low: float
    high: float
    confidence: float
    samples: int
    examples: int

    @property
    def excludes_zero(self) -> bool:
        """Whether the difference is significant at this confidence."""
        return self.low > 0 or self.high < 0

    def as_dict(self) -> dict[str, float]:
        return {"delta": self.delta, "low": self.low, "high": self.high}


def paired_bootstrap(
    a: np.ndarray | list[float] | list[list[float]],
    b: np.ndarray | list[float] | list[list[float]],
    statistic: Statistic | None = None,
    samples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> DeltaInterval:
    """The delta score(a) - score(b) with a percentile interval at `confidence`.

    `a` and `b` hold one row per example, in the same order: a value (statistic None: the mean)
    or a vector of sufficient statistics (then `statistic` turns a table of rows into the corpus
    score). The same `seed` gives the same interval.
    """
    first, second = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if first.shape != second.shape:
        raise ValueError(
            f"paired bootstrap needs the same examples for both models: shapes {first.shape} "
            f"and {second.shape} differ"
        )
    examples = len(first)
    if examples == 0:
        raise ValueError("paired bootstrap needs at least one example")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, not {confidence}")
    draws = np.random.default_rng(seed).integers(0, examples, size=(samples, examples))
    if statistic is None:
        if first.ndim != 1:
            raise ValueError("rows of statistics need a `statistic` to turn them into a score")
        deltas = first[draws].mean(axis=1) - second[draws].mean(axis=1)
        delta = float(first.mean() - second.mean())
    else:
        deltas = np.array([statistic(first[rows]) - statistic(second[rows]) for rows in draws])
        delta = float(statistic(first) - statistic(second))
    tail = (1 - confidence) / 2
    low, high = np.quantile(deltas, [tail, 1 - tail])
    return DeltaInterval(delta, float(low), float(high), confidence, samples, examples)
