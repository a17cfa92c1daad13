"""The evaluation report: what a person reads to judge the tuned model and the promotion gate.

`report_sections` turns the value of `eval_report` (an `EvalReport` as a dict, its stored JSON
document) and the training loss history into sections that `report_format` renders as Markdown
and HTML.
"""

from __future__ import annotations

import math
from typing import Any

from llm_assets.evaluation.answer_scores import ANSWER_METRICS
from llm_assets.evaluation.comparison import MODEL_ORDER
from llm_assets.evaluation.report_format import Figure, Section, Table, to_html, to_markdown
from llm_assets.evaluation.report_grounding import grounding_sections
from llm_assets.evaluation.review import REVIEW_CRITERIA

TITLE = "Evaluation report"


def labels_in(metrics: dict[str, Any]) -> list[str]:
    """The models the report compares, tuned first."""
    return [label for label in MODEL_ORDER if f"golden_rougeL_{label}" in metrics]


def _number(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _short(text: Any, width: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def render_eval_report(
    metrics: dict[str, Any], loss_history: list[tuple[int, float]] | None = None
) -> tuple[str, str, str, list[Figure]]:
    """(Markdown file, Markdown for the Dagster UI without figures, HTML page, figures)."""
    sections = report_sections(metrics, loss_history or [])
    figures = [b for section in sections for b in section.blocks if isinstance(b, Figure)]
    return (
        to_markdown(TITLE, sections),
        to_markdown(TITLE, sections, figure_links=False),
        to_html(TITLE, sections),
        figures,
    )


def report_sections(
    metrics: dict[str, Any], loss_history: list[tuple[int, float]]
) -> list[Section]:
    from llm_assets.evaluation import plots

    labels = labels_in(metrics)
    baseline = metrics.get("baseline_label", "base")
    sections = [_overview(metrics, baseline), _promotion(metrics)]

    rows = metrics.get("rows", {})
    perplexity = Section("Perplexity of the reference answers (lower is better)")
    perplexity.blocks.append(
        Table(
            ["split", "rows", *labels, "tuned vs base"],
            [
                [
                    split,
                    str(rows.get(split, "–")),
                    *[_number(metrics.get(f"{split}_perplexity_{label}"), 3) for label in labels],
                    _change(
                        metrics.get(f"{split}_perplexity_tuned"),
                        metrics.get(f"{split}_perplexity_base"),
                    ),
                ]
                for split in ("validation", "golden")
            ],
        )
    )
    sections.append(perplexity)

    quality = Section(f"Answers on the golden set ({rows.get('golden', '–')} prompts)")
    quality.blocks.append(
        "ROUGE-L and exact match run from 0 to 1, BLEU and chrF from 0 to 100 (sacrebleu); "
        "exact match counts only the tasks with one right answer."
    )
    quality.blocks.append(
        Table(
            ["metric", *labels],
            [
                [name, *[_number(metrics.get(f"golden_{key}_{label}")) for label in labels]]
                for key, name in ANSWER_METRICS.items()
            ],
        )
    )
    bars = {
        name: {label: metrics.get(f"golden_{key}_{label}") for label in labels}
        for key, name in ANSWER_METRICS.items()
        if key in ("rougeL", "exact_match")
    }
    quality.blocks.append(
        Figure(
            "metric_bars",
            "ROUGE-L and exact match per model",
            plots.metric_bars_png(bars, "Golden set: ROUGE-L and exact match"),
        )
    )
    corpus = {
        name: {label: metrics.get(f"golden_{key}_{label}") for label in labels}
        for key, name in ANSWER_METRICS.items()
        if key in ("bleu", "chrf")
    }
    quality.blocks.append(
        Figure(
            "corpus_bars",
            "BLEU and chrF per model",
            plots.metric_bars_png(corpus, "Golden set: BLEU and chrF"),
        )
    )
    sections.append(quality)
    sections.append(_deltas(metrics, plots))
    sections += grounding_sections(metrics)
    sections.append(_speed(metrics, labels))
    sections.append(_human(metrics))
    sections.append(_judge(metrics))
    sections.append(_redteam(metrics))
    sections.append(_side_by_side(metrics, labels))
    sections.append(_worst(metrics))
    loss = Section("Training loss")
    if loss_history:
        loss.blocks.append(
            Figure(
                "loss_curve",
                "Training loss (MLflow metric `loss`)",
                plots.loss_curve_png(loss_history),
            )
        )
    else:
        loss.blocks.append("No `loss` history was found on the training run in MLflow.")
    sections.append(loss)
    return sections


def _change(tuned: Any, base: Any) -> str:
    if not isinstance(tuned, float) or not isinstance(base, float) or not base:
        return "–"
    return f"{100 * (tuned - base) / base:+.1f}%"


def _overview(metrics: dict[str, Any], baseline: str) -> Section:
    section = Section("Models")
    models = {model["label"]: model for model in metrics.get("models", [])}
    lines = [
        f"- Base model: `{metrics.get('base_model_id', '–')}`",
        f"- Tuned ({metrics.get('method', '–')}): `{metrics.get('adapter_path', '–')}`",
        f"- MLflow run: `{metrics.get('mlflow_run_id', '–')}`",
    ]
    if "champion" in models:
        lines.append(
            f"- Champion: version {models['champion'].get('version') or '?'} "
            f"(`{models['champion'].get('path', '')}`)"
        )
    if metrics.get("champion_skipped"):
        lines.append(f"- Champion not compared: {metrics['champion_skipped']}")
    lines.append(f"- Baseline of the A/B comparison: **{baseline}**")
    if metrics.get("decoding"):
        lines.append(f"- Decoding: {metrics['decoding']}")
    section.blocks.append("\n".join(lines))
    return section


def _promotion(metrics: dict[str, Any]) -> Section:
    promotion = metrics.get("promotion") or {}
    section = Section("Promotion gate")
    if not promotion:
        section.blocks.append("The promotion gate was not evaluated.")
        return section
    verdict = "PASSED" if promotion.get("passed") else "FAILED"
    section.blocks.append(f"**{verdict}**: {promotion.get('summary', '')}")
    section.blocks.append(
        Table(
            ["criterion", "required", "actual", "passed", "reason"],
            [
                [
                    str(row["criterion"]),
                    str(row["required"]),
                    str(row["actual"]),
                    "yes" if row["passed"] else "**NO**",
                    str(row["reason"]),
                ]
                for row in promotion.get("criteria", [])
            ],
        )
    )
    return section


def _deltas(metrics: dict[str, Any], plots: Any) -> Section:
    deltas = metrics.get("deltas") or {}
    section = Section("A/B differences (tuned − other, paired bootstrap)")
    if not deltas:
        section.blocks.append("No A/B differences were computed.")
        return section
    confidence = metrics.get("confidence", 0.95)
    section.blocks.append(
        f"Each interval holds the difference with {confidence:.0%} confidence; it is "
        "significant when it does not contain 0. For perplexity, lower is better."
    )
    section.blocks.append(
        Table(
            ["comparison", "delta", "low", "high", "significant"],
            [
                [
                    name,
                    _number(delta["delta"]),
                    _number(delta["low"]),
                    _number(delta["high"]),
                    "yes" if delta["low"] > 0 or delta["high"] < 0 else "no",
                ]
                for name, delta in deltas.items()
            ],
        )
    )
    section.blocks.append(
        Figure(
            "deltas",
            "A/B deltas with bootstrap intervals",
            plots.delta_intervals_png(deltas, "tuned − other"),
        )
    )
    return section


def _speed(metrics: dict[str, Any], labels: list[str]) -> Section:
    section = Section("Generation speed")
    section.blocks.append(
        Table(
            ["model", "latency p50 per batch (ms)", "tokens/s"],
            [
                [
                    label,
                    _number(metrics.get(f"latency_ms_p50_{label}"), 1),
                    _number(metrics.get(f"tokens_per_second_{label}"), 1),
                ]
                for label in labels
            ],
        )
    )
    return section


def _human(metrics: dict[str, Any]) -> Section:
    section = Section("Human review")
    scores = metrics.get("human_scores") or {}
    counts = metrics.get("human_counts") or {}
    where = metrics.get("review_dir", "the review folder")
    if not metrics.get("human_reviews"):
        section.blocks.append(
            f"No reviews yet. Blinded A/B files of export `{metrics.get('review_export_id', '?')}`"
            f" are in `{where}`: score each answer 1-5 for {', '.join(REVIEW_CRITERIA)}, save "
            "the file there, then materialize `human_review_scores` and `eval_report`."
        )
        return section
    section.blocks.append(
        f"{metrics['human_reviews']} reviewed prompts from `{where}`, unblinded; mean score "
        "1-5 (number of scores)."
    )
    section.blocks.append(
        Table(
            ["model", *REVIEW_CRITERIA],
            [
                [
                    label,
                    *[
                        f"{_number(by_criterion.get(c), 2)} ({counts.get(label, {}).get(c, 0)})"
                        for c in REVIEW_CRITERIA
                    ],
                ]
                for label, by_criterion in scores.items()
            ],
        )
    )
    return section


def _judge(metrics: dict[str, Any]) -> Section:
    section = Section("LLM judge")
    judge = metrics.get("judge")
    if not judge or not judge.get("enabled"):
        section.blocks.append(
            "No LLM judge was asked (`evaluation.judge.enabled: false`). Point it at any "
            "OpenAI-compatible endpoint to score every golden answer on the review rubric; it "
            "counts in the gate once it agrees with human reviewers."
        )
        return section
    counted = (
        "**It counts in the promotion gate.**"
        if judge["counts_in_gate"]
        else f"**Not counted in the gate**: {judge['why_ignored']}."
    )
    section.blocks.append(
        f"`{judge['judge_model']}` at `{judge['endpoint']}` scored {judge['answers_scored']} "
        f"answers 1-5 ({judge['failed']} replies unusable). {counted}"
    )
    scores = judge.get("scores") or {}
    section.blocks.append(
        Table(
            ["model", *REVIEW_CRITERIA, "overall"],
            [
                [
                    label,
                    *[_number(by.get(c), 2) for c in REVIEW_CRITERIA],
                    _number(judge["overall"].get(label), 2),
                ]
                for label, by in scores.items()
            ],
        )
    )
    rows = []
    for name, key in (("judge vs humans", "with_humans"), ("human vs human", "between_humans")):
        found = judge.get(key)
        if found:
            rows.append(
                [
                    name,
                    str(found["answers"]),
                    f"{_number(found['weighted_kappa'], 2)} "
                    f"[{_number(found['kappa_low'], 2)}, {_number(found['kappa_high'], 2)}]",
                    f"{_number(found['spearman'], 2)} "
                    f"[{_number(found['spearman_low'], 2)}, {_number(found['spearman_high'], 2)}]",
                ]
            )
        else:
            rows.append([name, "0", "–", "–"])
    section.blocks.append(
        Table(["agreement", "answers", "weighted kappa [CI]", "Spearman [CI]"], rows)
    )
    return section


def _redteam(metrics: dict[str, Any]) -> Section:
    section = Section("Red team")
    categories = metrics.get("redteam_categories") or {}
    rate = metrics.get("redteam_pass_rate")
    section.blocks.append(
        f"Pass rate **{_number(rate, 3)}**; canary leaks: "
        f"{metrics.get('redteam_canary_leaks', '–')}; PII in outputs: "
        f"{metrics.get('redteam_pii_in_outputs', '–')}."
    )
    alone = metrics.get("redteam_model_alone_pass_rate")
    if alone is not None:
        section.blocks.append(
            "As served, after the guardrails: "
            f"{metrics.get('redteam_declined_out_of_scope', 0)} prompts declined as out of "
            f"scope, {metrics.get('redteam_answers_with_pii_withheld', 0)} answers with PII "
            f"withheld. The model's own answers, before them, pass {_number(alone, 3)}."
        )
    section.blocks.append(
        Table(
            ["category", "passed", "total", "pass rate"],
            [
                [name, str(c["passed"]), str(c["total"]), _number(c["pass_rate"], 3)]
                for name, c in sorted(categories.items())
            ],
        )
    )
    failures = metrics.get("redteam_failures") or []
    if failures:
        section.blocks.append(
            Table(
                ["category", "prompt", "output", "reason"],
                [
                    [
                        str(f.get("category", "")),
                        _short(f.get("prompt", ""), 100),
                        _short(f.get("output", ""), 100),
                        str(f.get("reason", "")),
                    ]
                    for f in failures
                ],
            )
        )
    return section


def _side_by_side(metrics: dict[str, Any], labels: list[str]) -> Section:
    examples = metrics.get("side_by_side") or []
    section = Section("Answers side by side")
    if not examples:
        section.blocks.append("No examples.")
        return section
    section.blocks.append(
        f"{len(examples)} golden prompts spread evenly over the set (chosen by position, not by "
        "score), each answered by every model; ROUGE-L is against the reference answer."
    )
    for number, example in enumerate(examples, 1):
        section.blocks.append(
            f"**{number}. {example['task']}** ({example['pair_id']}): "
            f"{_short(example['conversation'], 300)}"
        )
        section.blocks.append(
            Table(
                ["", "answer", "ROUGE-L"],
                [["reference", _short(example["reference"], 400), ""]]
                + [
                    [
                        label,
                        _short(example["answers"].get(label, ""), 400) or "(empty)",
                        _number(example["rougeL"].get(label), 3),
                    ]
                    for label in labels
                    if label in example["answers"]
                ],
            )
        )
    return section


def _worst(metrics: dict[str, Any]) -> Section:
    section = Section("Worst answers of the tuned model (lowest ROUGE-L)")
    examples = metrics.get("worst_examples") or []
    if not examples:
        section.blocks.append("No examples.")
        return section
    section.blocks.append(
        Table(
            ["task", "prompt", "reference", "tuned answer", "ROUGE-L"],
            [
                [
                    str(e.get("task", "")),
                    _short(e["conversation"], 120),
                    _short(e["reference"]),
                    _short(e["answer"]) or "(empty)",
                    _number(e["rougeL"], 3),
                ]
                for e in examples
            ],
        )
    )
    return section
