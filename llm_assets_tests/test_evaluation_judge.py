"""The LLM judge: reply parsing, agreement statistics, and the judge_scores step against a real
HTTP endpoint, counted by the gate only when it agrees with human reviewers."""

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from itertools import combinations, product
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from llm_assets.contracts import EvalReport, HumanReviewScores
from llm_assets.datasets.teacher import TeacherError
from llm_assets.evaluation import judge as judging
from llm_assets.evaluation.config import JudgeConfig
from llm_assets.evaluation.judge_run import run_judge_scores
from llm_assets.evaluation.promotion import judge_promotion
from llm_assets.evaluation.review import REVIEW_CRITERIA
from llm_assets.settings import PromotionCriteria
from llm_assets_tests.conftest import chat_endpoint
from llm_assets_tests.test_evaluation_promotion import NOT_JUDGED, _metrics

PAIRS = 36


def test_a_reply_with_scores_in_prose_is_read() -> None:
    reply = 'Here you go: {"accuracy": 4, "helpfulness": "5", "tone": 5, "factual_correctness": 2,'
    reply += ' "rationale": "invents a port"} Thanks.'
    scores, rationale = judging.parse_judge_reply(reply)
    assert scores == {"accuracy": 4, "helpfulness": 5, "tone": 5, "factual_correctness": 2}
    assert rationale == "invents a port"


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        ("I would give it a four.", "no JSON object"),
        ('{"accuracy": 4, "helpfulness": 4, "tone": 4}', "'factual_correctness' is None"),
        ('{"accuracy": 6, "helpfulness": 4, "tone": 4, "factual_correctness": 4}', "outside 1-5"),
        ('{"accuracy": 3.5, "helpfulness": 4, "tone": 4, "factual_correctness": 4}', "whole"),
        ('{"accuracy": true, "helpfulness": 4, "tone": 4, "factual_correctness": 4}', "whole"),
        ('{"accuracy": 4,, }', "invalid"),
    ],
)
def test_an_unusable_reply_says_why(reply: str, problem: str) -> None:
    with pytest.raises(judging.JudgeReplyError, match=problem):
        judging.parse_judge_reply(reply)


def _kappa_by_definition(first: list[int], second: list[int]) -> float:
    """Quadratic-weighted kappa written out from its definition, item pair by item pair."""
    n = len(first)
    observed = sum((a - b) ** 2 for a, b in zip(first, second, strict=True)) / n
    expected = sum((a - b) ** 2 for a, b in product(first, second)) / n**2
    return 1 - observed / expected


def test_weighted_kappa_matches_its_definition() -> None:
    rng = np.random.default_rng(3)
    first = rng.integers(1, 6, size=50)
    second = np.clip(first + rng.integers(-1, 2, size=50), 1, 5)
    assert judging.weighted_kappa(first, second) == pytest.approx(
        _kappa_by_definition(list(first), list(second))
    )
    assert judging.weighted_kappa(first, first) == pytest.approx(1.0)
    assert judging.weighted_kappa(np.array([1, 5, 1, 5]), np.array([5, 1, 5, 1])) < -0.9
    assert np.isnan(judging.weighted_kappa(np.array([3, 3]), np.array([3, 3])))


def test_spearman_uses_ranks() -> None:
    assert judging.spearman(np.array([1, 2, 3, 4]), np.array([1, 3, 4, 5])) == pytest.approx(1.0)
    assert np.isnan(judging.spearman(np.array([2, 2, 2]), np.array([1, 2, 3])))


def test_agreement_resamples_answers_and_brackets_its_estimate() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(1, 6, size=(40, 4))
    noisy = np.clip(truth + rng.integers(-1, 2, size=truth.shape), 1, 5)
    ratings = pd.DataFrame(
        {
            "answer": np.repeat(np.arange(40), 4),
            "first": truth.ravel(),
            "second": noisy.ravel(),
        }
    )
    found = judging.agreement(ratings, samples=300)
    assert found is not None and found.answers == 40 and found.ratings == 160
    assert found.kappa_low <= found.weighted_kappa <= found.kappa_high
    assert found.spearman_low <= found.spearman <= found.spearman_high
    assert 0.6 < found.weighted_kappa < 1.0
    assert judging.agreement(ratings.iloc[:0]) is None


def test_between_humans_pairs_every_two_reviewers_of_an_answer() -> None:
    humans = judging.long_scores(
        [
            ("p1", "ann.csv", {"accuracy": 4, "tone": 5}),
            ("p1", "bob.csv", {"accuracy": 3}),
            ("p1", "cy.csv", {"accuracy": 5}),
            ("p2", "ann.csv", {"accuracy": 2}),
        ]
    )
    pairs = judging.between_humans(humans)
    assert len(pairs) == 3 and set(pairs["answer"]) == {"p1"}
    assert sorted(zip(pairs["first"], pairs["second"], strict=True)) == sorted(
        [(4, 3), (4, 5), (3, 5)]
    )


# --- judge_scores against an endpoint --------------------------------------------------------


def human_score(pair: int, model: str, criterion: str) -> int:
    """What the reviewers gave: the tuned model one better, and scores spread over 1-5."""
    base = 1 + (pair * 7 + REVIEW_CRITERIA.index(criterion) * 3) % 4
    return base + 1 if model == "tuned" else base


def golden_predictions() -> pd.DataFrame:
    rows = [
        {
            "pair_id": f"p{pair}",
            "model": model,
            "conversation": f"Question {pair}?",
            "reference": f"Reference {pair}.",
            "answer": f"{model} answer {pair}",
        }
        for pair in range(PAIRS)
        for model in ("tuned", "base")
    ]
    # Rows of the other retrieval mode are not what people reviewed: never judged.
    rows.append({**rows[0], "model": "tuned/with-retrieval", "answer": "other mode"})
    return pd.DataFrame(rows)


def human_reviews(pairs: int = PAIRS, second_reviewer: int = 10) -> HumanReviewScores:
    answers = [
        {
            "reviewer": reviewer,
            "pair_id": f"p{pair}",
            "model": model,
            "scores": {c: human_score(pair, model, c) for c in REVIEW_CRITERIA},
        }
        for pair in range(pairs)
        for model in ("tuned", "base")
        for reviewer in (["ann.csv"] + (["bob.csv"] if pair < second_reviewer else []))
    ]
    return HumanReviewScores(
        export_id="e1",
        review_dir="/review",
        files=["ann.csv", "bob.csv"],
        reviews=pairs,
        comments=0,
        scores={},
        counts={},
        answers=answers,
    )


Grader = Callable[[int, str, str], Any]


@contextmanager
def judge_endpoint(grade: Grader) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An OpenAI-compatible chat endpoint on localhost whose reply scores each criterion with
    `grade(pair, model, criterion)` (the answer text says which pair and model it is)."""

    def reply(body: dict[str, Any]) -> str:
        answer = body["messages"][-1]["content"].rsplit("Answer to grade:\n", 1)[1]
        model, _, pair = answer.split()
        scores = {c: grade(int(pair), model, c) for c in REVIEW_CRITERIA}
        return f"Scores: {json.dumps(scores | {'rationale': 'ok'})}"

    with chat_endpoint(reply) as endpoint:
        yield endpoint.url, endpoint.requests


def judge_config(url: str, **changes: Any) -> JudgeConfig:
    return JudgeConfig(enabled=True, url=url, model="judge-model", **changes)


def run(config: JudgeConfig, tmp_path: Path, humans: HumanReviewScores | None = None) -> Any:
    return run_judge_scores(
        golden_predictions(),
        humans or human_reviews(),
        config,
        bootstrap_samples=200,
        confidence=0.95,
        cache_dir=tmp_path / "cache",
    ).value


def gate(judge: Any, **criteria: Any) -> Any:
    report = EvalReport.model_validate(
        NOT_JUDGED | _metrics(baseline_label="base", golden_rougeL_baseline=0.2) | {"judge": judge}
    )
    return judge_promotion(report, PromotionCriteria(**criteria))


def test_a_judge_that_agrees_with_reviewers_counts_in_the_gate(tmp_path: Path) -> None:
    def like_people(pair: int, model: str, criterion: str) -> int:
        # Off by one on every fifth answer, as a careful second reader would be.
        return max(1, human_score(pair, model, criterion) - (pair % 5 == 0))

    with judge_endpoint(like_people) as (url, requests):
        scores = run(judge_config(url), tmp_path)
    assert len(requests) == PAIRS * 2 and requests[0]["model"] == "judge-model"
    assert scores.answers_scored == PAIRS * 2 and scores.failed == 0
    assert scores.counts_in_gate and scores.why_ignored == ""
    assert scores.with_humans.answers == PAIRS * 2 and scores.with_humans.weighted_kappa > 0.9
    # Ten pairs were scored by two reviewers: their agreement is reported too.
    assert scores.between_humans.answers == 20 and scores.between_humans.weighted_kappa == 1.0
    assert scores.overall["tuned"] > scores.overall["base"]

    decision = gate(scores.summary())
    judged = {c.name: c for c in decision.criteria}["judge_score"]
    assert judged.passed and judged.actual != "not counted"
    # The same judge, asked for a margin the tuned model does not reach, fails the gate.
    margin = scores.overall["tuned"] - scores.overall["base"] + 0.5
    assert not {c.name: c for c in gate(scores.summary(), judge_margin=margin).criteria}[
        "judge_score"
    ].passed

    # A second run asks nothing again: replies are cached by request.
    with judge_endpoint(like_people) as (url_again, requests_again):
        config = judge_config(url)  # same endpoint name, same cache entries
        again = run(config, tmp_path)
    assert requests_again == [] and again.answers == scores.answers
    del url_again


def test_a_judge_that_disagrees_with_reviewers_is_refused_by_the_gate(tmp_path: Path) -> None:
    def contrary(pair: int, model: str, criterion: str) -> int:
        return 6 - human_score(pair, model, criterion)

    with judge_endpoint(contrary) as (url, _):
        scores = run(judge_config(url), tmp_path)
    assert not scores.counts_in_gate
    assert scores.with_humans.weighted_kappa < 0 and "weighted kappa" in scores.why_ignored
    # It prefers the base model: were it counted, the gate would fail. It is not counted.
    assert scores.overall["base"] > scores.overall["tuned"]
    judged = {c.name: c for c in gate(scores.summary()).criteria}["judge_score"]
    assert judged.passed and judged.actual == "not counted"
    assert "weighted kappa" in judged.reason


def test_too_few_reviewed_answers_keep_the_judge_out(tmp_path: Path) -> None:
    with judge_endpoint(human_score) as (url, _):
        scores = run(judge_config(url), tmp_path, humans=human_reviews(pairs=12))
    assert scores.with_humans.weighted_kappa == pytest.approx(1.0)
    assert not scores.counts_in_gate and "only 24 answers" in scores.why_ignored


def test_an_unusable_reply_is_listed_and_the_rest_are_scored(tmp_path: Path) -> None:
    def sometimes_broken(pair: int, model: str, criterion: str) -> Any:
        return "excellent" if pair == 3 and model == "base" else human_score(pair, model, criterion)

    with judge_endpoint(sometimes_broken) as (url, _):
        scores = run(judge_config(url), tmp_path)
    assert scores.answers_scored == PAIRS * 2 - 1
    assert scores.failures == [
        {
            "pair_id": "p3",
            "model": "base",
            "reason": "'accuracy' is 'excellent', not a whole number 1-5",
        }
    ]


def test_an_unreachable_judge_stops_the_step_naming_the_setting(tmp_path: Path) -> None:
    with judge_endpoint(human_score) as (url, _):
        pass  # closed again: nothing listens there now
    with pytest.raises(TeacherError, match=r"evaluation\.judge\.url"):
        run(judge_config(url, timeout_s=2), tmp_path)


def test_without_a_judge_only_the_reviewers_agreement_is_reported(tmp_path: Path) -> None:
    scores = run(JudgeConfig(), tmp_path)
    assert not scores.enabled and scores.answers_scored == 0 and scores.with_humans is None
    assert scores.why_ignored == "evaluation.judge.enabled is false: no judge was asked"
    assert scores.between_humans.answers == 20
    assert (
        "not counted" == {c.name: c for c in gate(scores.summary()).criteria}["judge_score"].actual
    )


def test_judge_config_needs_an_endpoint_when_enabled() -> None:
    with pytest.raises(ValueError, match="judge.enabled needs url and model"):
        JudgeConfig(enabled=True)


def test_reviewer_pairs_are_each_two_distinct_files() -> None:
    reviewers = ["a", "b", "c"]
    humans = judging.long_scores([("x", r, {"tone": 3}) for r in reviewers])
    assert len(judging.between_humans(humans)) == len(list(combinations(reviewers, 2)))
