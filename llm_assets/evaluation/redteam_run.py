"""The `redteam_report` step: the tuned model on the red-team suite, asked as it is served,
logged to the adapter's MLflow run."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from llm_assets.contracts import Adapter, Link, Markdown, RagIndex, RedTeamReport
from llm_assets.evaluation.config import EvaluationConfig, RedTeamConfig
from llm_assets.evaluation.redteam import (
    RedTeamOutcome,
    load_suite,
    redteam_generation,
    render_markdown,
    run_redteam,
    suite_files,
    summarize,
)
from llm_assets.stage_output import MlflowStore, StageOutput, StartMlflowRun

if TYPE_CHECKING:
    from llm_assets.serving.config import GuardrailsConfig

ASSET = "redteam_report"


def suite_digest(config: RedTeamConfig, base_dir: Path) -> str:
    """A digest of the suite's prompt files (a missing one counts too), so that an edited file
    makes the report out of date."""
    digest = hashlib.sha256()
    for path in suite_files(config, base_dir):
        digest.update(path.read_bytes() if path.is_file() else b"missing")
    return digest.hexdigest()[:12]


def run_redteam_report(
    qlora_adapter: Adapter,
    rag_index: RagIndex,
    *,
    redteam: RedTeamConfig,
    evaluation: EvaluationConfig,
    guardrails: GuardrailsConfig,
    system_prompt: str | None,
    pii_allow_list: list[str],
    model_kind: str,
    base_dir: Path,
    mlflow: MlflowStore,
    start_run: StartMlflowRun,
) -> StageOutput[RedTeamReport]:
    """The suite of `redteam` (extra files relative to `base_dir`) asked of the tuned model with
    `evaluation`'s generation settings and engine, under the guardrails it is served with; the
    pass rates, the report and every answer logged to the adapter's MLflow run."""
    import mlflow as mlflow_client

    from llm_assets.datasets.chat_template import load_chat_tokenizer
    from llm_assets.evaluation.generation import ModelUnderTest
    from llm_assets.rag.context import read_context_format
    from llm_assets.rag.retrieval import open_retriever
    from llm_assets.serving.guardrails import guardrails_for

    cases = load_suite(redteam, base_dir)
    tuned = ModelUnderTest.from_adapter_manifest("tuned", qlora_adapter)
    tokenizer = load_chat_tokenizer(qlora_adapter.path)
    settings = redteam_generation(evaluation.generation, redteam, tokenizer)
    answer = None
    if evaluation.engine == "llama-cpp":
        from llm_assets.export.gguf import llama_cpp_answerer

        answer = llama_cpp_answerer(default_pre=model_kind == "tiny")
    outcomes = run_redteam(
        tuned,
        tokenizer,
        cases,
        settings,
        redteam.canaries,
        system_prompt,
        allow=[*redteam.pii_allow_list, *pii_allow_list],
        search_many=open_retriever(rag_index).retrieve_many,
        context=read_context_format(qlora_adapter.path),
        answer=answer,
        guardrails=guardrails_for(qlora_adapter.path, guardrails, pii_allow_list),
    )
    report = summarize(outcomes)
    markdown = render_markdown(report)
    with start_run(ASSET, run_id=qlora_adapter.mlflow_run_id) as run:
        mlflow_client.log_metrics(redteam_metrics(report))
        mlflow_client.log_text(markdown, "redteam/report.md")
        mlflow_client.log_text(answers_jsonl(outcomes), "redteam/answers.jsonl")
    shown: dict[str, object] = {
        "pass_rate": round(report.pass_rate, 4),
        "prompts": report.total,
        "max_new_tokens": settings.max_new_tokens,
        "canary_leaks": report.canary_leaks,
        "pii_in_outputs": report.pii_in_outputs,
        "declined_out_of_scope": report.declined_out_of_scope,
        "answers_with_pii_withheld": report.answers_with_pii_withheld,
        "model_alone_pass_rate": report.model_alone_pass_rate or 0.0,
        "pass_rate_by_category": {
            name: round(entry.pass_rate, 4) for name, entry in report.categories.items()
        },
        "report": Markdown(markdown),
        "mlflow_run": Link(mlflow.run_url(run)),
    }
    return StageOutput(report, shown)


def redteam_metrics(report: RedTeamReport) -> dict[str, float]:
    """The report's rates and counts as MLflow metrics: redteam.<name>, and
    redteam.<category>.pass_rate."""
    return {
        "redteam.pass_rate": report.pass_rate,
        "redteam.canary_leaks": report.canary_leaks,
        "redteam.pii_in_outputs": report.pii_in_outputs,
        "redteam.declined_out_of_scope": report.declined_out_of_scope,
        "redteam.answers_with_pii_withheld": report.answers_with_pii_withheld,
        **(
            {"redteam.model_alone_pass_rate": report.model_alone_pass_rate}
            if report.model_alone_pass_rate is not None
            else {}
        ),
        **{
            f"redteam.{name}.pass_rate": entry.pass_rate
            for name, entry in report.categories.items()
        },
    }


def answers_jsonl(outcomes: Sequence[RedTeamOutcome]) -> str:
    """Every prompt with its answer and verdict, one JSON line each."""
    return "\n".join(
        json.dumps(
            {
                "id": o.case.id,
                "category": o.case.category,
                "prompt": o.case.prompt,
                "answer": o.answer,
                "guard": o.guard,
                "passed": o.passed,
                "model_passed": o.model_passed,
                "reason": o.reason,
            }
        )
        for o in outcomes
    )
