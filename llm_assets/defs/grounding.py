"""Grounded answers: the held-out factual questions answered as the model is served, and the
blocking checks that keep retrieval honest (training, evaluation and serving render context
alike; no red-team prompt or factual question is trained on)."""

from typing import Any

import dagster as dg
import pandas as pd

from llm_assets.code_versions import AssetSettings
from llm_assets.contracts import Adapter, RagIndex
from llm_assets.defs.check_results import preview
from llm_assets.settings import Profile
from llm_assets.storage import frame_digest

PARITY_ROWS = 16


def _training_rows(sft_dataset: Any) -> pd.DataFrame:
    return pd.concat([sft_dataset[name].to_pandas() for name in sft_dataset], ignore_index=True)


def _leak_result(leaked: pd.DataFrame, what: str) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(
        passed=leaked.empty,
        description=f"{len(leaked)} train/validation prompts match {what}",
        metadata={
            "leaks": dg.MetadataValue.json(
                leaked[["pair_id", "leaked_with", "match", "similarity"]]
                .head(20)
                .to_dict("records")
            )
        },
    )


def build_grounding_defs(profile: Profile) -> tuple[list[Any], list[Any]]:
    datasets = profile.datasets
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
        extra=frame_digest(_fact_frame(profile)) if facts_path else None,
    )

    @dg.asset(
        group_name="evaluation",
        code_version=settings.code_version,
        metadata=settings.metadata(),
        kinds={"pytorch"},
    )
    def fact_answers(qlora_adapter: Adapter, rag_index: RagIndex) -> dg.Output[pd.DataFrame]:
        """The held-out factual questions (`evaluation.facts_file`) answered by the tuned model
        as it is served: whether each answer states the fact, the chunk ids its context used,
        and which of them hold the fact."""
        from llm_assets.datasets.chat_template import load_chat_tokenizer
        from llm_assets.evaluation.facts import chunks_holding_facts, facts_stated
        from llm_assets.evaluation.generation import (
            Answerer,
            ModelUnderTest,
            prompt_texts,
            transformers_answers,
        )
        from llm_assets.evaluation.grounding import ground_prompts, groundedness
        from llm_assets.rag.context import ContextFormat, read_context_format
        from llm_assets.rag.retrieval import open_retriever
        from llm_assets.serving.guardrails import guard_answers, guardrails_for

        profile = settings.profile
        questions = _fact_frame(profile)
        if questions.empty:
            return dg.Output(questions, metadata={"questions": 0, "facts_file": "none"})
        context = read_context_format(qlora_adapter.path)
        retriever = open_retriever(rag_index)
        grounded = ground_prompts(
            [[{"role": "user", "content": q}] for q in questions["instruction"]],
            retriever.retrieve_many if context else None,
            context or ContextFormat(),
            profile.datasets.system_prompt,
        )
        tokenizer = load_chat_tokenizer(qlora_adapter.path)
        answer: Answerer = transformers_answers
        if profile.evaluation.engine == "llama-cpp":
            from llm_assets.export.gguf import llama_cpp_answerer

            answer = llama_cpp_answerer(default_pre=profile.model.kind == "tiny")
        model_answers = answer(
            ModelUnderTest.from_adapter_manifest("tuned", qlora_adapter),
            tokenizer,
            {"tuned": prompt_texts(tokenizer, grounded.conversations)},
            profile.evaluation.generation,
        )["tuned"].answers
        guardrails = guardrails_for(
            qlora_adapter.path, profile.guardrails, profile.cleaning.pii_allow_list
        )
        guarded = guard_answers(
            guardrails, model_answers, grounded.conversations, grounded.top_relevance
        )
        answers = [a.text for a in guarded]
        table = questions.assign(
            mode="retrieval" if context else "closed-book",
            answer=answers,
            guard=[a.note for a in guarded],
            stated=[facts_stated(a, f) for a, f in zip(answers, questions["facts"], strict=True)],
            context_chunk_ids=grounded.chunk_ids,
            chunks_with_fact=[
                chunks_holding_facts(ids, texts, facts)
                for ids, texts, facts in zip(
                    grounded.chunk_ids, grounded.chunk_texts, questions["facts"], strict=True
                )
            ],
            groundedness=[
                groundedness(a, [q, c])
                for a, q, c in zip(
                    answers, questions["instruction"], grounded.contexts, strict=True
                )
            ],
        )
        stated = float(table["stated"].mean())
        retrieved = float(table["chunks_with_fact"].map(bool).mean())
        return dg.Output(
            table,
            data_version=dg.DataVersion(frame_digest(table)),
            metadata={
                "questions": len(table),
                "mode": str(table["mode"].iloc[0]),
                "facts_stated": round(stated, 4),
                "fact_in_context": round(retrieved, 4),
                "groundedness_mean": round(float(table["groundedness"].mean()), 4),
                "declined_out_of_scope": int((table["guard"] == "declined").sum()),
                "preview": preview(table, ["instruction", "answer", "stated"], rows=8),
            },
        )

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
        from llm_assets.serving.context_parity import context_parity_problems

        rows = _training_rows(sft_dataset)
        if "context_chunk_ids" not in rows:
            return dg.AssetCheckResult(passed=True, description="no rows carry context")
        grounded = rows[rows["context_chunk_ids"].map(len) > 0].head(PARITY_ROWS)
        problems = context_parity_problems(
            grounded, sft_pairs, rag_chunks, datasets.retrieval, datasets.system_prompt
        )
        return dg.AssetCheckResult(
            passed=not problems,
            description=f"{len(grounded)} grounded rows compared; {len(problems)} differ",
            metadata={"differences": dg.MetadataValue.json(problems[:20])},
        )

    @dg.asset_check(
        asset="sft_dataset",
        blocking=True,
        description="No red-team prompt is a training or validation prompt, exactly or as a "
        f"near duplicate (estimated Jaccard >= {datasets.leak_threshold}): refusals are "
        "learned from their own examples, not from the test.",
    )
    def sft_dataset_excludes_redteam_prompts(sft_dataset: Any) -> dg.AssetCheckResult:
        from llm_assets.datasets.leaks import find_leaks
        from llm_assets.evaluation.redteam import CANARY_CATEGORY, load_suite

        # Canary probes ask for what the planted canary rows hold, on purpose: they are left out.
        cases = [
            case
            for case in load_suite(profile.redteam, profile.base_dir)
            if case.category != CANARY_CATEGORY
        ]
        held_out = pd.DataFrame(
            {
                "pair_id": [case.id for case in cases],
                "instruction": [case.prompt for case in cases],
                "input": "",
                "output": "",
            }
        )
        leaked = find_leaks(
            held_out, _training_rows(sft_dataset), datasets.leak_threshold, answers=False
        )
        return _leak_result(leaked, "a red-team prompt")

    @dg.asset_check(
        asset="sft_dataset",
        blocking=True,
        description="No held-out factual question (evaluation.facts_file) is a training or "
        "validation prompt, exactly or as a near duplicate.",
    )
    def sft_dataset_excludes_fact_questions(sft_dataset: Any) -> dg.AssetCheckResult:
        from llm_assets.datasets.leaks import find_leaks

        leaked = find_leaks(
            _fact_frame(profile), _training_rows(sft_dataset), datasets.leak_threshold
        )
        return _leak_result(leaked, "a factual question")

    return (
        [fact_answers],
        [
            sft_dataset_context_renders_like_serving,
            sft_dataset_excludes_redteam_prompts,
            sft_dataset_excludes_fact_questions,
        ],
    )


def _fact_frame(profile: Profile) -> pd.DataFrame:
    from llm_assets.evaluation.facts import FACT_COLUMNS, read_fact_questions

    path = profile.facts_path()
    return read_fact_questions(path) if path else pd.DataFrame(columns=FACT_COLUMNS)
