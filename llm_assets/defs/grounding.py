"""Grounded answers: the held-out factual questions answered as the model is served, and the
blocking checks that keep retrieval honest (training, evaluation and serving render context
alike; no red-team prompt or factual question is trained on)."""

from typing import Any

import dagster as dg
import pandas as pd

from llm_assets.code_versions import AssetSettings
from llm_assets.contracts import Adapter, RagIndex
from llm_assets.defs.check_results import preview
from llm_assets.defs.location import stage_definitions
from llm_assets.defs.metadata import stage_output
from llm_assets.evaluation.fact_run import (
    PREVIEW_COLUMNS,
    PREVIEW_ROWS,
    fact_questions,
    run_fact_answers,
)
from llm_assets.evaluation.held_out_audit import (
    context_parity,
    fact_question_leaks,
    leaks_shown,
    redteam_prompt_leaks,
)
from llm_assets.settings import Profile
from llm_assets.storage import frame_digest


def build_grounding_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
    return (
        [fact_answers_asset(profile)],
        [
            context_parity_check(profile),
            redteam_leak_check(profile),
            fact_question_leak_check(profile),
        ],
    )


def fact_answers_asset(profile: Profile) -> dg.AssetsDefinition:
    facts_path = profile.facts_path()
    settings = AssetSettings(
        profile,
        "fact_answers",
        reads=[
            "evaluation.facts_file",
            "evaluation.generation",
            "evaluation.engine",
            "model.kind",
            "datasets.system_prompt",
            "guardrails",
            "cleaning.pii_allow_list",
        ],
        code=["evaluation", "defs/grounding.py", "serving/guardrails.py", "rag/context.py"],
        extra=frame_digest(fact_questions(facts_path)) if facts_path else None,
    )

    @dg.asset(
        group_name="evaluation",
        code_version=settings.code_version,
        metadata=settings.metadata(),
        kinds={"pytorch"},
    )
    def fact_answers(preference_adapter: Adapter, rag_index: RagIndex) -> dg.Output[pd.DataFrame]:
        """The held-out factual questions (`evaluation.facts_file`) answered by the tuned model
        as it is served: whether each answer states the fact, the chunk ids its context used,
        and which of them hold the fact."""
        profile = settings.profile
        run = run_fact_answers(
            fact_questions(profile.facts_path()),
            preference_adapter,
            rag_index,
            profile.evaluation,
            profile.guardrails,
            system_prompt=profile.datasets.system_prompt,
            pii_allow_list=profile.cleaning.pii_allow_list,
            tiny_model=profile.model.kind == "tiny",
        )
        if run.value.empty:
            return stage_output(run)
        return stage_output(run, preview=preview(run.value, PREVIEW_COLUMNS, PREVIEW_ROWS))

    return fact_answers


def _leak_result(leaked: pd.DataFrame, what: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=leaked.empty,
        description=f"{len(leaked)} train/validation prompts match {what}",
        metadata={"leaks": dg.MetadataValue.json(leaks_shown(leaked))},
    )


def context_parity_check(profile: Profile) -> dg.AssetChecksDefinition:
    retrieval, system_prompt = profile.datasets.retrieval, profile.datasets.system_prompt

    @dg.asset_check(
        asset="sft_dataset",
        additional_ins={"sft_pairs": dg.AssetIn("sft_pairs"), "rag_chunks": dg.AssetIn()},
        blocking=True,
        description="Training rows with retrieved context read exactly as evaluation and "
        "serving would render the same question and chunks (one context format).",
    )
    def sft_dataset_context_renders_like_serving(
        sft_dataset: Any, sft_pairs: pd.DataFrame, rag_chunks: pd.DataFrame
    ) -> dg.AssetCheckResult:
        compared = context_parity(sft_dataset, sft_pairs, rag_chunks, retrieval, system_prompt)
        if compared is None:
            return dg.AssetCheckResult(passed=True, description="no rows carry context")
        rows, problems = compared
        return dg.AssetCheckResult(
            passed=not problems,
            description=f"{rows} grounded rows compared; {len(problems)} differ",
            metadata={"differences": dg.MetadataValue.json(problems[:20])},
        )

    return sft_dataset_context_renders_like_serving


def redteam_leak_check(profile: Profile) -> dg.AssetChecksDefinition:
    redteam, base_dir = profile.redteam, profile.base_dir
    threshold = profile.datasets.leak_threshold

    @dg.asset_check(
        asset="sft_dataset",
        blocking=True,
        description="No red-team prompt is a training or validation prompt, exactly or as a "
        f"near duplicate (estimated Jaccard >= {threshold}): refusals are "
        "learned from their own examples, not from the test.",
    )
    def sft_dataset_excludes_redteam_prompts(sft_dataset: Any) -> dg.AssetCheckResult:
        leaked = redteam_prompt_leaks(sft_dataset, redteam, base_dir, threshold)
        return _leak_result(leaked, "a red-team prompt")

    return sft_dataset_excludes_redteam_prompts


def fact_question_leak_check(profile: Profile) -> dg.AssetChecksDefinition:
    paths = [path for path in (profile.facts_path(), profile.dev_facts_path()) if path]
    threshold = profile.datasets.leak_threshold

    @dg.asset_check(
        asset="sft_dataset",
        blocking=True,
        description="No factual question, held out (evaluation.facts_file) or choosing "
        "settings (evaluation.dev_facts_file), is a training or validation prompt, exactly or "
        "as a near duplicate.",
    )
    def sft_dataset_excludes_fact_questions(sft_dataset: Any) -> dg.AssetCheckResult:
        questions = pd.concat([fact_questions(path) for path in paths] or [fact_questions(None)])
        leaked = fact_question_leaks(sft_dataset, questions, threshold)
        return _leak_result(leaked, "a factual question")

    return sft_dataset_excludes_fact_questions


@dg.definitions
def grounding_definitions() -> dg.Definitions:
    return stage_definitions(build_grounding_defs)
