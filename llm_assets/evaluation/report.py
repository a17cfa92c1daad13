"""The evaluation report as Markdown: what a person reads to judge the tuned model."""

from __future__ import annotations

from typing import Any


def render_eval_report(metrics: dict[str, Any], model_id: str, adapter_path: str) -> str:
    rows = metrics["rows"]
    lines = [
        "# Evaluation report",
        "",
        f"- Base model: `{model_id}`",
        f"- Adapter: `{adapter_path}`",
        f"- MLflow run: `{metrics['mlflow_run_id']}`",
        "",
        "## Perplexity (lower is better)",
        "",
        "| split | rows | tokens | base | tuned | change |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for split in ("validation", "golden"):
        base, tuned = metrics[f"{split}_perplexity_base"], metrics[f"{split}_perplexity_tuned"]
        lines.append(
            f"| {split} | {rows[split]} | {metrics[f'{split}_tokens']} | {base:.2f} | {tuned:.2f} "
            f"| {100 * (tuned - base) / base:+.1f}% |"
        )
    verdict = (
        "The tuned model predicts held-out answers better than its base."
        if metrics["golden_perplexity_tuned"] < metrics["golden_perplexity_base"]
        else "The tuned model is **not** better than its base on the golden set."
    )
    lines += ["", verdict, ""]
    return "\n".join(lines)
