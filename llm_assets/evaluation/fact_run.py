"""The `fact_answers` step: the held-out factual questions answered by the tuned model as it is
served (retrieved context when it was trained with it, then the guardrails), and whether each
answer states its fact and each context held it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from llm_assets.contracts import Adapter, RagIndex
from llm_assets.settings import EvaluationConfig, GuardrailsConfig
from llm_assets.stage_output import StageOutput
from llm_assets.storage import frame_digest

if TYPE_CHECKING:
    from llm_assets.evaluation.grounding import GroundedPrompts

# What the asset page previews of each answer, and how many answers.
PREVIEW_COLUMNS = ["instruction", "answer", "stated"]
PREVIEW_ROWS = 8


def fact_questions(path: Path | None) -> pd.DataFrame:
    """The questions of the facts file at `path` (`evaluation.facts_file`); none without one."""
    from llm_assets.evaluation.facts import FACT_COLUMNS, read_fact_questions

    return read_fact_questions(path) if path else pd.DataFrame(columns=FACT_COLUMNS)


def run_fact_answers(
    questions: pd.DataFrame,
    qlora_adapter: Adapter,
    rag_index: RagIndex,
    evaluation: EvaluationConfig,
    guardrails: GuardrailsConfig,
    *,
    system_prompt: str | None,
    pii_allow_list: Sequence[str],
    tiny_model: bool,
) -> StageOutput:
    """`questions` (from `fact_questions`) answered by the adapter as served: grounded in
    `rag_index` when the adapter was trained with retrieval, generated as `evaluation` says
    (`tiny_model` tells llama.cpp the tokenizer pre-tokenizes by default), then guarded."""
    from llm_assets.evaluation.facts import chunks_holding_facts, facts_stated
    from llm_assets.evaluation.grounding import ground_prompts, groundedness
    from llm_assets.rag.context import ContextFormat, read_context_format
    from llm_assets.rag.retrieval import open_retriever
    from llm_assets.serving.guardrails import guard_answers, guardrails_for

    if questions.empty:
        return StageOutput(questions, {"questions": 0, "facts_file": "none"}, None)
    context = read_context_format(qlora_adapter.path)
    retriever = open_retriever(rag_index)
    grounded = ground_prompts(
        [[{"role": "user", "content": q}] for q in questions["instruction"]],
        retriever.retrieve_many if context else None,
        context or ContextFormat(),
        system_prompt,
    )
    model_answers = _model_answers(qlora_adapter, grounded, evaluation, tiny_model)
    guarded = guard_answers(
        guardrails_for(qlora_adapter.path, guardrails, pii_allow_list),
        model_answers,
        grounded.conversations,
        grounded.top_relevance,
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
            for a, q, c in zip(answers, questions["instruction"], grounded.contexts, strict=True)
        ],
    )
    return StageOutput(table, _report(table), frame_digest(table))


def _model_answers(
    qlora_adapter: Adapter,
    grounded: GroundedPrompts,
    evaluation: EvaluationConfig,
    tiny_model: bool,
) -> list[str]:
    """The tuned model's answers to the grounded conversations, on `evaluation.engine`."""
    from llm_assets.datasets.chat_template import load_chat_tokenizer
    from llm_assets.evaluation.generation import (
        Answerer,
        ModelUnderTest,
        closed_book_texts,
        prompt_texts,
        transformers_answers,
    )

    tokenizer = load_chat_tokenizer(qlora_adapter.path)
    answer: Answerer = transformers_answers
    if evaluation.engine == "llama-cpp":
        from llm_assets.export.gguf import llama_cpp_answerer

        answer = llama_cpp_answerer(default_pre=tiny_model)
    return answer(
        ModelUnderTest.from_adapter_manifest("tuned", qlora_adapter),
        tokenizer,
        {"tuned": prompt_texts(tokenizer, grounded.conversations)},
        evaluation.generation,
        closed_book={"tuned": closed_book_texts(tokenizer, grounded.closed_book)},
    )["tuned"].answers


def _report(table: pd.DataFrame) -> dict[str, object]:
    return {
        "questions": len(table),
        "mode": str(table["mode"].iloc[0]),
        "facts_stated": round(float(table["stated"].mean()), 4),
        "fact_in_context": round(float(table["chunks_with_fact"].map(bool).mean()), 4),
        "groundedness_mean": round(float(table["groundedness"].mean()), 4),
        "declined_out_of_scope": int((table["guard"] == "declined").sum()),
    }
