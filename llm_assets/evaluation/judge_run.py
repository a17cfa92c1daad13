"""The `judge_scores` step: an LLM judge scores every served golden answer on the review rubric,
and is calibrated against the human reviews of the same answers."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from llm_assets.contracts import Agreement, HumanReviewScores, JudgedAnswer, JudgeScores
from llm_assets.datasets.teacher import TeacherClient, TeacherReplyError
from llm_assets.evaluation import judge as judging
from llm_assets.evaluation.config import JudgeConfig
from llm_assets.evaluation.review import REVIEW_CRITERIA
from llm_assets.stage_output import StageOutput

SECTION = "evaluation.judge"


def run_judge_scores(
    golden_predictions: pd.DataFrame,
    human_review_scores: HumanReviewScores,
    config: JudgeConfig,
    *,
    bootstrap_samples: int,
    confidence: float,
    cache_dir: Path,
) -> StageOutput[JudgeScores]:
    """The judge's scores of the served golden answers (replies cached in `cache_dir`, so a
    re-run asks nothing twice), their agreement with the human reviewers and between
    reviewers, and whether the gate may count them. An answer the judge could not score is
    listed with the reason; an endpoint that cannot be used at all raises `TeacherError`."""
    served = golden_predictions[~golden_predictions["model"].astype(str).str.contains("/")]
    if config.models:
        served = served[served["model"].isin(config.models)]
    judged: list[JudgedAnswer] = []
    failures: list[dict[str, str]] = []
    requests = hits = 0
    if config.enabled:
        client = TeacherClient.from_config(config, cache_dir, section=SECTION)
        judged, failures = _judge_answers(client, served)
        requests, hits = client.requests_sent, client.cache_hits
    humans = judging.long_scores(
        [
            (_answer_id(a.pair_id, a.model), a.reviewer, a.scores)
            for a in human_review_scores.answers
        ]
    )
    judge = judging.long_scores(
        [(_answer_id(a.pair_id, a.model), "judge", a.scores) for a in judged]
    )
    with_humans = judging.agreement(
        judging.judge_against_humans(judge, humans), bootstrap_samples, confidence
    )
    between = judging.agreement(judging.between_humans(humans), bootstrap_samples, confidence)
    why_ignored = _why_ignored(config, with_humans, human_review_scores)
    scores = _mean_scores(judged)
    value = JudgeScores(
        enabled=config.enabled,
        endpoint=config.url or "",
        judge_model=config.model or "",
        answers_scored=len(judged),
        failed=len(failures),
        scores=scores,
        overall={label: sum(by.values()) / len(by) for label, by in scores.items()},
        with_humans=with_humans,
        between_humans=between,
        counts_in_gate=not why_ignored,
        why_ignored=why_ignored,
        answers=judged,
        failures=failures,
    )
    report: dict[str, object] = {
        "counts_in_gate": value.counts_in_gate,
        "why_ignored": why_ignored or "it counts: its agreement with humans is high enough",
        "answers_scored": len(judged),
        "failed": len(failures),
        "requests_sent": requests,
        "cache_hits": hits,
        "mean_scores": pd.DataFrame(scores).T.reset_index(names="model") if scores else "none",
        "agreement_with_humans": _agreement_line(with_humans),
        "agreement_between_humans": _agreement_line(between),
    }
    if failures:
        report["failures"] = pd.DataFrame(failures).head(20)
    return StageOutput(value, report)


def _judge_answers(
    client: TeacherClient, served: pd.DataFrame
) -> tuple[list[JudgedAnswer], list[dict[str, str]]]:
    judged: list[JudgedAnswer] = []
    failures: list[dict[str, str]] = []
    for row in served.itertuples():
        messages = judging.judge_messages(
            str(row.conversation), str(row.reference), str(row.answer)
        )
        try:
            scores, rationale = judging.parse_judge_reply(client.complete(messages))
        except (TeacherReplyError, judging.JudgeReplyError) as error:
            failures.append(
                {"pair_id": str(row.pair_id), "model": str(row.model), "reason": str(error)}
            )
            continue
        judged.append(
            JudgedAnswer(
                pair_id=str(row.pair_id), model=str(row.model), scores=scores, rationale=rationale
            )
        )
    return judged, failures


def _answer_id(pair_id: str, model: str) -> str:
    return f"{pair_id}\x1f{model}"


def _mean_scores(judged: list[JudgedAnswer]) -> dict[str, dict[str, float]]:
    by_model: dict[str, dict[str, list[int]]] = {}
    for answer in judged:
        for criterion, score in answer.scores.items():
            by_model.setdefault(answer.model, {}).setdefault(criterion, []).append(score)
    return {
        model: {c: sum(by[c]) / len(by[c]) for c in REVIEW_CRITERIA if c in by}
        for model, by in sorted(by_model.items())
    }


def _why_ignored(
    config: JudgeConfig, with_humans: Agreement | None, humans: HumanReviewScores
) -> str:
    """Why the gate must not listen to the judge ("" when it may)."""
    if not config.enabled:
        return f"{SECTION}.enabled is false: no judge was asked"
    if not humans.answers:
        return "no human reviews yet to calibrate the judge against"
    if with_humans is None or with_humans.answers < config.min_reviewed_answers:
        both = with_humans.answers if with_humans else 0
        return (
            f"only {both} answers were scored by both humans and the judge; it counts from "
            f"{config.min_reviewed_answers} ({SECTION}.min_reviewed_answers)"
        )
    kappa = with_humans.weighted_kappa
    if not kappa >= config.min_agreement:  # NaN included
        return (
            f"its agreement with humans is too low: weighted kappa {kappa:.2f} < "
            f"{config.min_agreement:g} on {with_humans.answers} answers"
        )
    return ""


def _agreement_line(found: Agreement | None) -> str:
    if found is None:
        return "no answers scored by both"
    kappa = f"{found.weighted_kappa:.2f} [{found.kappa_low:.2f}, {found.kappa_high:.2f}]"
    rank = f"{found.spearman:.2f} [{found.spearman_low:.2f}, {found.spearman_high:.2f}]"
    return (
        f"weighted kappa {kappa}, Spearman {rank} on {found.answers} answers "
        f"({found.ratings} scores)"
    )
