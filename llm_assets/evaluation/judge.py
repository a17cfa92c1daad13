"""An LLM judge of golden answers, and how far its scores can be trusted.

The judge scores an answer 1-5 on the same rubric human reviewers use (`review.RUBRIC`), given
the conversation and the reference answer, through any OpenAI-compatible chat endpoint. Its
scores are only worth something where they agree with people: `agreement` compares two raters
on the answers both scored, per criterion, with Cohen's kappa under quadratic weights (a 4
against a 5 is a smaller disagreement than a 1 against a 5) and Spearman's rank correlation,
each with a bootstrap interval that resamples answers (a judge that is right on one answer's
four criteria is not right four times independently).
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from llm_assets.contracts import Agreement
from llm_assets.evaluation.review import REVIEW_CRITERIA, RUBRIC

SCORES = np.arange(1, 6)
_JSON_OBJECT = re.compile(r"\{.*\}", flags=re.DOTALL)

JUDGE_INSTRUCTIONS = (
    "You grade one answer a customer-support assistant gave. Score it from 1 (worst) to 5 "
    "(best) on each criterion:\n"
    + "\n".join(f"- {criterion}: {question}" for criterion, question in RUBRIC.items())
    + "\nThe reference answer was written by the support team; an answer may be worded "
    "differently and still deserve a 5, but facts it contradicts or invents lower accuracy and "
    "factual_correctness. Reply with one JSON object and nothing else: "
    + json.dumps({criterion: 3 for criterion in REVIEW_CRITERIA} | {"rationale": "one sentence"})
)


class JudgeReplyError(ValueError):
    """A judge reply that holds no usable scores; the message says what was wrong."""


def judge_messages(conversation: str, reference: str, answer: str) -> list[dict[str, str]]:
    """The chat request that asks the judge to score `answer`."""
    return [
        {"role": "system", "content": JUDGE_INSTRUCTIONS},
        {
            "role": "user",
            "content": f"Conversation:\n{conversation}\n\nReference answer:\n{reference}\n\n"
            f"Answer to grade:\n{answer}",
        },
    ]


def parse_judge_reply(reply: str) -> tuple[dict[str, int], str]:
    """(criterion -> score 1-5, rationale) from a judge's reply: the first JSON object in it,
    with a whole-number score for every criterion."""
    found = _JSON_OBJECT.search(reply)
    if not found:
        raise JudgeReplyError(f"no JSON object in the reply: {reply[:120]!r}")
    try:
        parsed = json.loads(found.group(0))
    except json.JSONDecodeError as error:
        message = f"the reply's JSON is invalid ({error.msg}): {reply[:120]!r}"
        raise JudgeReplyError(message) from error
    if not isinstance(parsed, dict):
        raise JudgeReplyError(f"the reply's JSON is not an object: {reply[:120]!r}")
    scores: dict[str, int] = {}
    for criterion in REVIEW_CRITERIA:
        value = parsed.get(criterion)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
            raise JudgeReplyError(f"{criterion!r} is {value!r}, not a whole number 1-5")
        if not 1 <= value <= 5:
            raise JudgeReplyError(f"{criterion!r} is {value!r}, outside 1-5")
        scores[criterion] = int(value)
    return scores, str(parsed.get("rationale") or "")


def weighted_kappa(first: np.ndarray, second: np.ndarray) -> float:
    """Cohen's kappa of two raters' 1-5 scores of the same items under quadratic weights: 1 is
    perfect agreement, 0 what raters who ignore the items would reach by chance. NaN when
    chance agreement is already perfect (both raters give one score to everything)."""
    first, second = np.asarray(first, dtype=int), np.asarray(second, dtype=int)
    observed = np.zeros((5, 5))
    np.add.at(observed, (first - 1, second - 1), 1)
    observed /= observed.sum()
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0))
    weights = (SCORES[:, None] - SCORES[None, :]) ** 2 / 16
    chance = float((weights * expected).sum())
    if chance == 0:
        return float("nan")
    return 1.0 - float((weights * observed).sum()) / chance


def spearman(first: np.ndarray, second: np.ndarray) -> float:
    """Spearman's rank correlation (ties get their mean rank); NaN when either rater gives
    every item the same score."""
    with warnings.catch_warnings():
        # A constant rater is expected here (NaN says so); scipy's warning adds nothing.
        warnings.simplefilter("ignore")
        return float(pd.Series(first, dtype=float).corr(pd.Series(second, dtype=float), "spearman"))


def agreement(
    ratings: pd.DataFrame, samples: int = 1000, confidence: float = 0.95, seed: int = 0
) -> Agreement | None:
    """Agreement of two raters. `ratings` holds one row per compared score: `answer` (the id
    the bootstrap resamples), `first`, `second` (1-5). None when nothing was compared."""
    if ratings.empty:
        return None
    first, second = ratings["first"].to_numpy(int), ratings["second"].to_numpy(int)
    groups = ratings.groupby("answer", sort=False).indices
    members = list(groups.values())
    rng = np.random.default_rng(seed)
    kappas, correlations = [], []
    for _ in range(samples):
        drawn = np.concatenate([members[i] for i in rng.integers(len(members), size=len(members))])
        kappas.append(weighted_kappa(first[drawn], second[drawn]))
        correlations.append(spearman(first[drawn], second[drawn]))
    tail = (1 - confidence) / 2 * 100
    kappa_low, kappa_high = _interval(kappas, tail)
    spearman_low, spearman_high = _interval(correlations, tail)
    return Agreement(
        answers=len(members),
        ratings=len(ratings),
        weighted_kappa=weighted_kappa(first, second),
        kappa_low=kappa_low,
        kappa_high=kappa_high,
        spearman=spearman(first, second),
        spearman_low=spearman_low,
        spearman_high=spearman_high,
    )


def _interval(values: list[float], tail: float) -> tuple[float, float]:
    finite = np.asarray(values)[np.isfinite(values)]
    if not len(finite):
        return float("nan"), float("nan")
    return float(np.percentile(finite, tail)), float(np.percentile(finite, 100 - tail))


def long_scores(answers: Sequence[tuple[str, str, dict[str, int]]]) -> pd.DataFrame:
    """(answer id, rater, {criterion: score}) per scored answer -> one row per score:
    answer, rater, criterion, score."""
    return pd.DataFrame(
        [
            (answer, rater, criterion, score)
            for answer, rater, scores in answers
            for criterion, score in scores.items()
        ],
        columns=["answer", "rater", "criterion", "score"],
    )


def judge_against_humans(judge: pd.DataFrame, humans: pd.DataFrame) -> pd.DataFrame:
    """Each human score beside the judge's score of the same answer and criterion (both in
    `long_scores` form): answer, first (human), second (judge)."""
    paired = humans.merge(
        judge[["answer", "criterion", "score"]], on=["answer", "criterion"], suffixes=("", "_j")
    )
    return paired.rename(columns={"score": "first", "score_j": "second"})[
        ["answer", "first", "second"]
    ]


def between_humans(humans: pd.DataFrame) -> pd.DataFrame:
    """Every two reviewers' scores of the same answer and criterion: answer, first, second."""
    paired = humans.merge(humans, on=["answer", "criterion"], suffixes=("", "_other"))
    paired = paired[paired["rater"] < paired["rater_other"]]
    return paired.rename(columns={"score": "first", "score_other": "second"})[
        ["answer", "first", "second"]
    ]
