"""The paired bootstrap: no difference, a clear difference, corpus statistics, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from llm_assets.evaluation.answer_scores import bleu_from_stats, perplexity_from_stats
from llm_assets.evaluation.bootstrap import paired_bootstrap


def test_identical_systems_differ_by_zero() -> None:
    scores = np.random.default_rng(1).random(40)
    result = paired_bootstrap(scores, scores.copy(), samples=200)
    assert result.delta == 0.0
    assert result.low <= 0.0 <= result.high
    assert not result.excludes_zero


def test_a_clearly_better_system_has_an_interval_above_zero() -> None:
    rng = np.random.default_rng(2)
    worse = rng.uniform(0.1, 0.4, size=50)
    better = worse + rng.uniform(0.2, 0.4, size=50)
    result = paired_bootstrap(better, worse, samples=500, confidence=0.95)
    assert 0 < result.low <= result.delta <= result.high
    assert result.excludes_zero
    flipped = paired_bootstrap(worse, better, samples=500)
    assert flipped.high < 0


def test_noise_gives_an_interval_around_zero() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.5, 0.2, size=60), rng.normal(0.5, 0.2, size=60)
    result = paired_bootstrap(a, b, samples=500)
    assert result.low < 0 < result.high


def test_same_seed_same_interval_other_seed_other_interval() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.random(30), rng.random(30)
    first = paired_bootstrap(a, b, samples=300, seed=7)
    assert paired_bootstrap(a, b, samples=300, seed=7) == first
    assert paired_bootstrap(a, b, samples=300, seed=8) != first


def test_wider_confidence_gives_a_wider_interval() -> None:
    rng = np.random.default_rng(5)
    a, b = rng.random(30), rng.random(30)
    narrow = paired_bootstrap(a, b, samples=500, confidence=0.8)
    wide = paired_bootstrap(a, b, samples=500, confidence=0.99)
    assert wide.low <= narrow.low and wide.high >= narrow.high


def test_corpus_metric_is_recomputed_from_resampled_statistics() -> None:
    # Rows of BLEU statistics: [sys_len, ref_len, correct 1-4, total 1-4].
    perfect = np.array([[4, 4, 4, 3, 2, 1, 4, 3, 2, 1]] * 10, dtype=float)
    half = np.array([[4, 4, 2, 1, 1, 1, 4, 3, 2, 1]] * 10, dtype=float)
    result = paired_bootstrap(perfect, half, bleu_from_stats, samples=100)
    assert result.delta == pytest.approx(bleu_from_stats(perfect) - bleu_from_stats(half))
    assert result.low == pytest.approx(result.delta) and result.high == pytest.approx(result.delta)


def test_perplexity_from_statistics_is_exp_of_mean_token_nll() -> None:
    rows = np.array([[2.0, 2.0], [4.0, 2.0]])  # NLL 6 over 4 tokens
    assert perplexity_from_stats(rows) == pytest.approx(np.exp(1.5))


def test_mismatched_examples_are_refused() -> None:
    with pytest.raises(ValueError, match="same examples"):
        paired_bootstrap([0.1, 0.2], [0.1])
    with pytest.raises(ValueError, match="at least one"):
        paired_bootstrap([], [])
