"""The project's `evaluate` metric modules against values worked out by hand and against direct
calls of the libraries they wrap, loaded offline."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from llm_assets.evaluation.answer_scores import bleu_from_stats, chrf_from_stats, score_answers
from llm_assets.evaluation.metrics import load_metric, metric_path

REFERENCE = "the cat sat on the mat"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("evaluate-cache")


def test_rouge_matches_hand_counts(cache: Path) -> None:
    rouge = load_metric("rouge", cache)
    result = rouge.compute(predictions=["the cat on the mat"], references=[REFERENCE])
    # LCS "the cat on the mat" = 5 of 5 predicted and 6 reference tokens: F = 2PR/(P+R).
    precision, recall = 5 / 5, 5 / 6
    assert result["rougeL"] == pytest.approx(2 * precision * recall / (precision + recall))
    assert result["rouge1"] == pytest.approx(10 / 11)
    # Bigrams: 3 shared ("the cat", "on the", "the mat") of 4 predicted and 5 reference.
    assert result["rouge2"] == pytest.approx(2 * (3 / 4) * (3 / 5) / (3 / 4 + 3 / 5))
    assert result["rougeL_per_example"] == [pytest.approx(10 / 11)]


def test_rouge_corpus_score_is_the_mean_of_examples(cache: Path) -> None:
    from rouge_score import rouge_scorer

    predictions = ["the cat on the mat", "a dog barked", "nothing alike here"]
    references = [REFERENCE, "the dog barked loudly", "completely different words"]
    result = load_metric("rouge", cache).compute(predictions=predictions, references=references)
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    direct = [
        scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(predictions, references, strict=True)
    ]
    assert result["rougeL_per_example"] == pytest.approx(direct)
    assert result["rougeL"] == pytest.approx(np.mean(direct))
    assert result["rougeL_per_example"][2] == 0.0


def test_bleu_matches_hand_counts_and_sacrebleu(cache: Path) -> None:
    import sacrebleu

    bleu = load_metric("bleu", cache)
    result = bleu.compute(predictions=[REFERENCE], references=["the cat sat on a mat"])
    # Matches of order 1-4: 5/6, 3/5, 2/4, 1/3; equal lengths, so no brevity penalty.
    expected = 100 * math.exp(sum(map(math.log, [5 / 6, 3 / 5, 2 / 4, 1 / 3])) / 4)
    assert result["bleu"] == pytest.approx(expected)
    assert result["precisions"] == pytest.approx([500 / 6, 60.0, 50.0, 100 / 3])
    assert result["brevity_penalty"] == 1.0
    predictions = ["the cat sat on a mat", "hello world", "a quick brown fox jumps"]
    references = [REFERENCE, "hello there world", "the quick brown fox jumped"]
    result = bleu.compute(predictions=predictions, references=references)
    assert result["bleu"] == pytest.approx(sacrebleu.corpus_bleu(predictions, [references]).score)
    assert len(result["stats"]) == 3


def test_chrf_matches_sacrebleu_and_its_bounds(cache: Path) -> None:
    import sacrebleu

    chrf = load_metric("chrf", cache)
    assert chrf.compute(predictions=["abc def"], references=["abc def"])["chrf"] == 100.0
    assert chrf.compute(predictions=["xyz"], references=["abc"])["chrf"] == 0.0
    predictions = ["the cat sat on a mat", "hello world"]
    references = [REFERENCE, "hello there world"]
    result = chrf.compute(predictions=predictions, references=references)
    assert result["chrf"] == pytest.approx(sacrebleu.corpus_chrf(predictions, [references]).score)


def test_corpus_scores_are_recomputed_from_summed_statistics(cache: Path) -> None:
    import sacrebleu

    predictions = ["the cat sat on a mat", "hello world", "a quick brown fox jumps"]
    references = [REFERENCE, "hello there world", "the quick brown fox jumped"]
    scores = score_answers("tuned", predictions, references, cache)
    assert bleu_from_stats(scores.bleu_stats) == pytest.approx(scores.corpus["bleu"])
    assert chrf_from_stats(scores.chrf_stats) == pytest.approx(scores.corpus["chrf"])
    # A resample (rows 0, 2, 2) is scored as that corpus, not as a mean of sentence scores.
    rows = [0, 2, 2]
    subset_predictions = [predictions[i] for i in rows]
    subset_references = [references[i] for i in rows]
    assert bleu_from_stats(scores.bleu_stats[rows]) == pytest.approx(
        sacrebleu.corpus_bleu(subset_predictions, [subset_references]).score
    )
    assert chrf_from_stats(scores.chrf_stats[rows]) == pytest.approx(
        sacrebleu.corpus_chrf(subset_predictions, [subset_references]).score
    )


def test_exact_match_normalizes_case_punctuation_and_articles(cache: Path) -> None:
    exact = load_metric("exact_match", cache)
    result = exact.compute(
        predictions=["The  Pro plan.", "180 days", "Team"],
        references=["pro plan", "365 days", "the team!"],
    )
    assert result["exact_match_per_example"] == [1, 0, 1]
    assert result["exact_match"] == pytest.approx(2 / 3)


def test_exact_match_only_on_flagged_rows(cache: Path) -> None:
    scores = score_answers(
        "tuned", ["42", "long answer"], ["42", "another"], cache, exact_match_rows=[True, False]
    )
    assert scores.corpus["exact_match"] == 1.0 and list(scores.exact_match) == [1.0]
    none = score_answers("tuned", ["a"], ["b"], cache, exact_match_rows=[False])
    assert none.corpus["exact_match"] is None


def test_load_metric_runs_offline_and_writes_only_its_cache(
    tmp_path: Path, no_network: list[object]
) -> None:
    cache = tmp_path / "cache"
    load_metric("rouge", cache).compute(predictions=["a"], references=["a"])
    assert no_network == []
    assert {path.name for path in tmp_path.iterdir()} == {"cache"}
    assert any(cache.rglob("rouge.py"))


def test_plain_evaluate_load_works_offline_in_a_fresh_process(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    script = (
        "import socket\n"
        "def refuse(*args, **kwargs): raise OSError('network used')\n"
        "socket.socket.connect = refuse\n"
        "import evaluate\n"
        f"m = evaluate.load({str(metric_path('bleu'))!r}, keep_in_memory=True,"
        f" cache_dir={str(tmp_path / 'data')!r})\n"
        "print(m.compute(predictions=['a b c d'], references=['a b c d'])['bleu'])\n"
    )
    environment = {
        **os.environ,
        "HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_MODULES_CACHE": str(tmp_path / "modules"),
    }
    run = subprocess.run(
        [sys.executable, "-c", script], env=environment, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    assert float(run.stdout.strip().splitlines()[-1]) == pytest.approx(100.0)
    assert list(home.iterdir()) == []
