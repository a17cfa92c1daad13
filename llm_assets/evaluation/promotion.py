"""The promotion gate: does a tuned model meet its use case's criteria to become `champion`?

`judge_promotion` takes an evaluation report (the value of `eval_report`) and the use case's
`PromotionCriteria`, and returns one verdict per criterion, so that a report can say
exactly which criterion held a challenger back. It is a pure function: no MLflow, no Dagster.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from llm_assets.contracts import EvalReport
from llm_assets.evaluation.config import PromotionCriteria


@dataclass(frozen=True)
class CriterionResult:
    """One criterion of the gate: what it requires, what the model achieved, and why it passed
    or failed, in words for the report."""

    name: str
    required: str
    actual: str
    passed: bool
    reason: str


@dataclass(frozen=True)
class PromotionDecision:
    """The verdict of the gate: passed when every criterion passed."""

    passed: bool
    criteria: list[CriterionResult] = field(default_factory=list)

    @property
    def failed(self) -> list[CriterionResult]:
        return [criterion for criterion in self.criteria if not criterion.passed]

    def summary(self) -> str:
        """One line: 'passed' or which criteria failed."""
        if self.passed:
            return f"passed: all {len(self.criteria)} criteria met"
        return "failed: " + "; ".join(f"{c.name} ({c.reason})" for c in self.failed)

    def as_rows(self) -> list[dict[str, Any]]:
        """The criteria as table rows (for metadata, Markdown and MLflow)."""
        return [
            {
                "criterion": c.name,
                "required": c.required,
                "actual": c.actual,
                "passed": c.passed,
                "reason": c.reason,
            }
            for c in self.criteria
        ]

    def to_markdown(self) -> str:
        lines = [
            f"**Promotion gate: {'PASSED' if self.passed else 'FAILED'}**",
            "",
            "| criterion | required | actual | passed | reason |",
            "|---|---|---|---|---|",
        ]
        for c in self.criteria:
            lines.append(
                f"| {c.name} | {c.required} | {c.actual} | {'yes' if c.passed else 'NO'} "
                f"| {c.reason} |"
            )
        return "\n".join(lines)


def judge_promotion(metrics: EvalReport, criteria: PromotionCriteria) -> PromotionDecision:
    """Each criterion of `criteria` judged on `metrics` (an `eval_report` value).

    - rouge_l: `golden_rougeL_tuned` ≥ `golden_rougeL_baseline` + `rouge_l_margin` (the
      baseline is the champion when one exists, else the base model).
    - redteam_pass_rate: `redteam_pass_rate` ≥ `min_redteam_pass_rate`.
    - redteam_categories (when `min_redteam_category_pass_rate` is set): every category of
      `redteam_categories` passes at least that share, so a strong category cannot hide a
      weak one in the overall rate.
    - perplexity_below_base (when enabled): `golden_perplexity_tuned` < `golden_perplexity_base`.
    - human_score (when `min_human_score` is set and reviews exist): the mean of the tuned
      model's human scores over every criterion ≥ `min_human_score`.
    - judge_score (when `judge_margin` is set and the LLM judge counts, i.e. it agrees with
      human reviewers well enough on enough answers): the tuned model's mean judge score ≥ the
      baseline's + `judge_margin`. A judge that does not count is listed with the reason.

    A metric that is missing (None) or not a finite number fails its criterion: a gate must not
    pass on what it could not measure.
    """
    results = [
        _rouge_l(metrics, criteria.rouge_l_margin),
        _redteam(metrics, criteria.min_redteam_pass_rate),
    ]
    if criteria.min_redteam_category_pass_rate is not None:
        results.append(_redteam_categories(metrics, criteria.min_redteam_category_pass_rate))
    if criteria.perplexity_below_base:
        results.append(_perplexity(metrics))
    if criteria.min_human_score is not None:
        results.append(_human_score(metrics, criteria.min_human_score))
    if criteria.judge_margin is not None:
        results.append(_judge_score(metrics, criteria.judge_margin))
    return PromotionDecision(passed=all(r.passed for r in results), criteria=results)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _missing(name: str, required: str, key: str) -> CriterionResult:
    return CriterionResult(
        name=name,
        required=required,
        actual="missing",
        passed=False,
        reason=f"{key} is missing from the evaluation report; it cannot be judged",
    )


def _rouge_l(metrics: EvalReport, margin: float) -> CriterionResult:
    label = metrics.baseline_label or "baseline"
    tuned = _finite(metrics.golden_rougeL_tuned)
    baseline = _finite(metrics.golden_rougeL_baseline)
    required = f"≥ {label} + {margin:g}"
    if tuned is None:
        return _missing("rouge_l", required, "golden_rougeL_tuned")
    if baseline is None:
        return _missing("rouge_l", required, "golden_rougeL_baseline")
    threshold = baseline + margin
    passed = tuned >= threshold
    comparison = "≥" if passed else "<"
    return CriterionResult(
        name="rouge_l",
        required=f"≥ {threshold:.4f} ({label} {baseline:.4f} + {margin:g})",
        actual=f"{tuned:.4f}",
        passed=passed,
        reason=f"tuned ROUGE-L {tuned:.4f} {comparison} {label} {baseline:.4f} + margin {margin:g}",
    )


def _redteam(metrics: EvalReport, minimum: float) -> CriterionResult:
    required = f"≥ {minimum:g}"
    rate = _finite(metrics.redteam_pass_rate)
    if rate is None:
        return _missing("redteam_pass_rate", required, "redteam_pass_rate")
    passed = rate >= minimum
    return CriterionResult(
        name="redteam_pass_rate",
        required=required,
        actual=f"{rate:.3f}",
        passed=passed,
        reason=f"red-team pass rate {rate:.3f} {'≥' if passed else '<'} {minimum:g}",
    )


def _redteam_categories(metrics: EvalReport, minimum: float) -> CriterionResult:
    required = f"each ≥ {minimum:g}"
    categories = metrics.redteam_categories
    if not categories:
        return _missing("redteam_categories", required, "redteam_categories")
    rates = {name: _finite(entry.pass_rate) for name, entry in categories.items()}
    failing = sorted(name for name, rate in rates.items() if rate is None or rate < minimum)
    weakest = min(rates.items(), key=lambda item: -1.0 if item[1] is None else item[1])
    actual = f"{weakest[0]} {weakest[1]:.3f}" if weakest[1] is not None else f"{weakest[0]} ?"
    return CriterionResult(
        name="redteam_categories",
        required=required,
        actual=actual,
        passed=not failing,
        reason=(
            f"below {minimum:g}: {', '.join(failing)}"
            if failing
            else f"all {len(rates)} categories ≥ {minimum:g}"
        ),
    )


def _perplexity(metrics: EvalReport) -> CriterionResult:
    tuned = _finite(metrics.golden_perplexity_tuned)
    base = _finite(metrics.golden_perplexity_base)
    if tuned is None:
        return _missing("perplexity_below_base", "< base", "golden_perplexity_tuned")
    if base is None:
        return _missing("perplexity_below_base", "< base", "golden_perplexity_base")
    passed = tuned < base
    return CriterionResult(
        name="perplexity_below_base",
        required=f"< {base:.3f} (base)",
        actual=f"{tuned:.3f}",
        passed=passed,
        reason=f"tuned perplexity {tuned:.3f} {'<' if passed else '≥'} base {base:.3f}",
    )


def _human_score(metrics: EvalReport, minimum: float) -> CriterionResult:
    required = f"≥ {minimum:g} (mean of 1-5 scores, when reviews exist)"
    reviews = metrics.human_reviews
    scores = metrics.human_scores.get("tuned") or {}
    if not reviews or not scores:
        return CriterionResult(
            name="human_score",
            required=required,
            actual="no reviews",
            passed=True,
            reason="no human reviews were imported; the criterion applies once they are",
        )
    values = [value for value in scores.values() if math.isfinite(value)]
    if not values:
        return _missing("human_score", required, "human_scores.tuned")
    mean = sum(values) / len(values)
    passed = mean >= minimum
    return CriterionResult(
        name="human_score",
        required=required,
        actual=f"{mean:.2f}",
        passed=passed,
        reason=f"mean human score of the tuned model {mean:.2f} {'≥' if passed else '<'} "
        f"{minimum:g} over {reviews} reviews",
    )


def _judge_score(metrics: EvalReport, margin: float) -> CriterionResult:
    label = metrics.baseline_label or "baseline"
    required = f"≥ {label} + {margin:g} (mean 1-5 judge score, when the judge counts)"
    judge = metrics.judge
    if judge is None or not judge.counts_in_gate:
        why = judge.why_ignored if judge else "no judge scores in the evaluation report"
        return CriterionResult(
            name="judge_score", required=required, actual="not counted", passed=True, reason=why
        )
    tuned = _finite(judge.overall.get("tuned"))
    baseline = _finite(judge.overall.get(label))
    if tuned is None:
        return _missing("judge_score", required, "judge.overall.tuned")
    if baseline is None:
        return _missing("judge_score", required, f"judge.overall.{label}")
    passed = tuned >= baseline + margin
    kappa = judge.with_humans.weighted_kappa if judge.with_humans else float("nan")
    return CriterionResult(
        name="judge_score",
        required=f"≥ {baseline + margin:.2f} ({label} {baseline:.2f} + {margin:g})",
        actual=f"{tuned:.2f}",
        passed=passed,
        reason=f"judge score of the tuned model {tuned:.2f} {'≥' if passed else '<'} {label} "
        f"{baseline:.2f} + {margin:g} (judge-human weighted kappa {kappa:.2f})",
    )
