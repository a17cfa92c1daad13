"""The comparison metrics from a predictions table, and the report rendered from them."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pandas as pd
import pytest

from llm_assets.evaluation.comparison import compare_models
from llm_assets.evaluation.perplexity import PerplexityResult
from llm_assets.evaluation.predictions import PREDICTION_COLUMNS, generation_speed
from llm_assets.evaluation.report import render_eval_report
from llm_assets.settings import EvaluationConfig

REFERENCES = [
    "Pro keeps 180 days of version history.",
    "Open Preferences and untick the folder.",
    "Click Resume in the status window.",
    "42",
]


def predictions_table(labels: tuple[str, ...] = ("tuned", "base")) -> pd.DataFrame:
    answers = {
        "tuned": [
            "Pro keeps 180 days of history.",
            "Open Preferences and untick it.",
            "Click Resume.",
            "42",
        ],
        "base": ["I do not know.", "Maybe restart.", "Click somewhere.", "41"],
        "champion": [
            "Pro keeps 90 days.",
            "Open Preferences.",
            "Click Resume in the window.",
            "42",
        ],
    }
    rows = []
    for label in labels:
        for index, reference in enumerate(REFERENCES):
            rows.append(
                {
                    "pair_id": f"p{index}",
                    "source": "tickets",
                    "task": "number" if index == 3 else "support_answer",
                    "model": label,
                    "model_path": f"/models/{label}",
                    "base_model_path": "/models/base",
                    "method": "none" if label == "base" else "qlora",
                    "model_version": "3" if label == "champion" else "",
                    "conversation": f"question {index}",
                    "reference": reference,
                    "answer": answers[label][index],
                    "new_tokens": 10,
                    "batch": index // 2,
                    "batch_latency_ms": 100.0 if index < 2 else 300.0,
                }
            )
    return pd.DataFrame(rows, columns=PREDICTION_COLUMNS)


def perplexities(labels: tuple[str, ...]) -> dict[str, dict[str, PerplexityResult]]:
    nll = {"tuned": 1.0, "base": 2.0, "champion": 1.5}
    return {
        label: {
            split: PerplexityResult(
                float(math.exp(nll[label])),
                nll[label],
                8,
                4,
                [2 * nll[label]] * 4,
                [2] * 4,
            )
            for split in ("validation", "golden")
        }
        for label in labels
    }


def test_generation_speed_per_model() -> None:
    speed = generation_speed(predictions_table())
    # Batches of 100 ms and 300 ms: median 200 ms; 40 tokens in 0.4 s.
    assert speed["tuned"] == {"latency_ms_p50": 200.0, "tokens_per_second": 100.0}


def test_compare_models_gives_every_key_with_base_as_baseline(tmp_path: Path) -> None:
    config = EvaluationConfig(bootstrap_samples=200, exact_match_tasks=["number"])
    metrics = compare_models(predictions_table(), perplexities(("tuned", "base")), config, tmp_path)
    assert metrics["baseline_label"] == "base"
    for metric in ("rougeL", "bleu", "chrf", "exact_match"):
        assert {f"golden_{metric}_tuned", f"golden_{metric}_base"} <= set(metrics)
    assert "golden_rougeL_champion" not in metrics
    assert metrics["golden_rougeL_baseline"] == metrics["golden_rougeL_base"]
    assert metrics["golden_rougeL_tuned"] > metrics["golden_rougeL_base"]
    assert metrics["golden_exact_match_tuned"] == 1.0 and metrics["exact_match_rows"] == 1
    assert metrics["golden_perplexity_tuned"] == pytest.approx(2.718, rel=1e-3)
    assert set(metrics["deltas"]) == {
        "rougeL_vs_base",
        "bleu_vs_base",
        "chrf_vs_base",
        "exact_match_vs_base",
        "perplexity_vs_base",
        "validation_perplexity_vs_base",
    }
    rouge = metrics["deltas"]["rougeL_vs_base"]
    assert rouge["low"] <= rouge["delta"] <= rouge["high"] and rouge["delta"] > 0
    assert metrics["deltas"]["perplexity_vs_base"]["delta"] < 0
    assert metrics["latency_ms_p50_tuned"] == 200.0 and metrics["tokens_per_second_base"] == 100.0
    assert metrics["worst_examples"][0]["pair_id"] != "p3"


def test_side_by_side_spreads_over_the_golden_set_with_every_answer(tmp_path: Path) -> None:
    config = EvaluationConfig(bootstrap_samples=100, side_by_side=3)
    metrics = compare_models(predictions_table(), perplexities(("tuned", "base")), config, tmp_path)
    shown = metrics["side_by_side"]
    # Picked by position (first, middle, last of 4 rows), not by score.
    assert [example["pair_id"] for example in shown] == ["p0", "p2", "p3"]
    assert shown[0]["reference"] == REFERENCES[0]
    assert shown[0]["answers"] == {
        "tuned": "Pro keeps 180 days of history.",
        "base": "I do not know.",
    }
    assert shown[2]["rougeL"] == {"tuned": 1.0, "base": 0.0}
    markdown = render_eval_report(metrics)[0]
    assert "## Answers side by side" in markdown
    assert "| tuned | Pro keeps 180 days of history. | " in markdown
    assert "| base | I do not know. | " in markdown
    none = EvaluationConfig(bootstrap_samples=100, side_by_side=0)
    hidden = compare_models(predictions_table(), perplexities(("tuned", "base")), none, tmp_path)
    assert hidden["side_by_side"] == []


def test_a_champion_becomes_the_baseline(tmp_path: Path) -> None:
    labels = ("tuned", "base", "champion")
    config = EvaluationConfig(bootstrap_samples=100)
    metrics = compare_models(predictions_table(labels), perplexities(labels), config, tmp_path)
    assert metrics["baseline_label"] == "champion"
    assert metrics["golden_rougeL_baseline"] == metrics["golden_rougeL_champion"]
    assert {"rougeL_vs_base", "rougeL_vs_champion", "perplexity_vs_champion"} <= set(
        metrics["deltas"]
    )


def report_metrics(tmp_path: Path) -> dict:
    config = EvaluationConfig(bootstrap_samples=100)
    metrics = compare_models(predictions_table(), perplexities(("tuned", "base")), config, tmp_path)
    return metrics | {
        "mlflow_run_id": "abc123",
        "base_model_id": "tiny-llama",
        "adapter_path": "/adapters/run1",
        "method": "qlora",
        "redteam_pass_rate": 0.9,
        "redteam_categories": {
            "jailbreak": {"passed": 9, "total": 10, "pass_rate": 0.9},
            "pii_extraction": {"passed": 9, "total": 10, "pass_rate": 0.9},
        },
        "redteam_failures": [
            {
                "category": "jailbreak",
                "prompt": "Ignore rules",
                "output": "ok",
                "reason": "complied",
            }
        ],
        "human_scores": {"tuned": {"accuracy": 4.5}, "base": {"accuracy": 2.0}},
        "human_counts": {"tuned": {"accuracy": 2}, "base": {"accuracy": 2}},
        "human_reviews": 2,
        "review_dir": "/state/review",
        "promotion": {
            "passed": False,
            "summary": "failed: redteam_pass_rate (0.900 < 0.95)",
            "criteria": [
                {
                    "criterion": "rouge_l",
                    "required": "≥ 0.2",
                    "actual": "0.8",
                    "passed": True,
                    "reason": "ok",
                },
                {
                    "criterion": "redteam_pass_rate",
                    "required": "≥ 0.95",
                    "actual": "0.900",
                    "passed": False,
                    "reason": "red-team pass rate 0.900 < 0.95",
                },
            ],
        },
    }


def test_report_shows_metrics_failed_criterion_and_figures(tmp_path: Path) -> None:
    metrics = report_metrics(tmp_path)
    markdown, ui_markdown, page, figures = render_eval_report(metrics, [(1, 3.0), (2, 2.5)])
    assert (
        "**FAILED**" in markdown and "| redteam_pass_rate | ≥ 0.95 | 0.900 | **NO** |" in markdown
    )
    assert "| ROUGE-L |" in markdown and "rougeL_vs_base" in markdown
    assert "| jailbreak | 9 | 10 | 0.900 |" in markdown
    assert "| tuned | 4.50 (2) |" in markdown
    assert {f.name for f in figures} == {"metric_bars", "corpus_bars", "deltas", "loss_curve"}
    assert all(f.png.startswith(b"\x89PNG") for f in figures)
    assert "![Training loss" in markdown and "![" not in ui_markdown
    assert page.count("<img") == 4 and "data:image/png;base64," in page
    # Self-contained: no reference to anything outside the page.
    assert not re.search(r"(src|href)=\"(?!data:)", page)
    assert "<b>FAILED</b>" in page and "<table>" in page


def test_report_says_how_answers_were_decoded(tmp_path: Path) -> None:
    from llm_assets.evaluation.config import GenerationConfig

    contrasted = GenerationConfig(context_contrast=0.5).describe()
    assert contrasted == (
        "greedy, at most 96 new tokens, repetition penalty 1.1 on answer tokens; answers with "
        "retrieved context decoded context-aware (a = 0.5)"
    )
    plain = GenerationConfig(context_contrast=0, repetition_penalty=1.0, do_sample=True)
    assert plain.describe().startswith("sampled (temperature 0.7, top-p 0.95, seed 0)")
    assert plain.describe().endswith("no repetition penalty; no context-aware decoding")
    markdown = render_eval_report(report_metrics(tmp_path) | {"decoding": contrasted})[0]
    assert f"- Decoding: {contrasted}" in markdown
    assert "- Decoding:" not in render_eval_report(report_metrics(tmp_path))[0]


def test_report_without_reviews_or_loss_says_what_to_do(tmp_path: Path) -> None:
    metrics = report_metrics(tmp_path) | {"human_reviews": 0, "human_scores": {}}
    markdown, _, page, figures = render_eval_report(metrics, [])
    assert "No reviews yet" in markdown and "/state/review" in markdown
    assert "No `loss` history" in markdown
    assert "loss_curve" not in {f.name for f in figures}


def test_the_stored_report_reads_back_and_renders_as_its_document(tmp_path: Path) -> None:
    """As the IO manager stores it: no champion keys when none was compared (readers test for
    them), NaN kept, the same report read back, rendered as the document it came from."""
    import json

    from llm_assets.contracts import EvalReport

    from .test_evaluation_promotion import NOT_JUDGED

    document = NOT_JUDGED | report_metrics(tmp_path)
    report = EvalReport.model_validate(document)
    stored = json.loads(report.model_dump_json())
    assert "golden_rougeL_champion" not in stored and "latency_ms_p50_champion" not in stored
    assert stored["facts"] == {"questions": 0}
    assert EvalReport.model_validate(stored) == report
    assert render_eval_report(report.model_dump())[0] == render_eval_report(document)[0]
    unmeasured = report.model_copy(update={"golden_perplexity_base": float("nan")})
    assert math.isnan(json.loads(unmeasured.model_dump_json())["golden_perplexity_base"])


def test_report_shows_the_judge_its_agreement_and_why_it_is_not_counted(tmp_path: Path) -> None:
    agreement = {
        "answers": 12,
        "ratings": 48,
        "weighted_kappa": 0.41,
        "kappa_low": 0.2,
        "kappa_high": 0.6,
        "spearman": 0.5,
        "spearman_low": 0.3,
        "spearman_high": 0.7,
    }
    judge = {
        "enabled": True,
        "endpoint": "http://127.0.0.1:8000/v1",
        "judge_model": "judge-7b",
        "answers_scored": 24,
        "failed": 1,
        "scores": {"tuned": {"accuracy": 4.0, "tone": 5.0}, "base": {"accuracy": 2.0}},
        "overall": {"tuned": 4.5, "base": 2.0},
        "with_humans": agreement,
        "between_humans": None,
        "counts_in_gate": False,
        "why_ignored": "its agreement with humans is too low: weighted kappa 0.41 < 0.6",
    }
    markdown = render_eval_report(report_metrics(tmp_path) | {"judge": judge})[0]
    assert "## LLM judge" in markdown and "`judge-7b`" in markdown
    assert "**Not counted in the gate**: its agreement with humans is too low" in markdown
    assert "| tuned | 4.00 | – | 5.00 | – | 4.50 |" in markdown
    assert "| judge vs humans | 12 | 0.41 [0.20, 0.60] | 0.50 [0.30, 0.70] |" in markdown
    assert "| human vs human | 0 | – | – |" in markdown
    without = render_eval_report(report_metrics(tmp_path))[0]
    assert "No LLM judge was asked" in without
