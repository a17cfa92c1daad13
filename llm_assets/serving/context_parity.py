"""Proof that training, evaluation and serving give a model the same prompt for the same
question and chunks: the stored training rows are rendered again through evaluation's and
serving's own functions and compared, message by message."""

from __future__ import annotations

from typing import Any

import pandas as pd

from llm_assets.datasets.retrieval import SearchMany, question_of
from llm_assets.evaluation.grounding import ground_prompts
from llm_assets.rag.context import ContextFormat, Retrieve
from llm_assets.rag.index import RetrievedChunk
from llm_assets.serving.app import request_prompt
from llm_assets.settings import RetrievalConfig


def _chunks(rag_chunks: pd.DataFrame, chunk_ids: list[str]) -> list[RetrievedChunk]:
    by_id = rag_chunks.set_index("chunk_id")
    return [
        RetrievedChunk(
            chunk_id,
            str(by_id.at[chunk_id, "record_id"]),
            str(by_id.at[chunk_id, "source"]),
            str(by_id.at[chunk_id, "uri"]),
            str(by_id.at[chunk_id, "heading"]),
            str(by_id.at[chunk_id, "text"]),
            1.0,
        )
        for chunk_id in chunk_ids
    ]


def _found(chunks: list[RetrievedChunk]) -> Retrieve:
    """A search that finds `chunks` whatever the question: the row's own context."""

    def search(_question: str, _k: int) -> list[RetrievedChunk]:
        return chunks

    return search


def _found_many(chunks: list[RetrievedChunk]) -> SearchMany:
    def search_many(questions: Any, _k: int) -> list[list[RetrievedChunk]]:
        return [chunks for _ in questions]

    return search_many


def _plain(messages: Any) -> list[dict[str, str]]:
    return [{"role": str(m["role"]), "content": str(m["content"])} for m in messages]


def context_parity_problems(
    grounded_rows: pd.DataFrame,
    sft_pairs: pd.DataFrame,
    rag_chunks: pd.DataFrame,
    retrieval: RetrievalConfig,
    system_prompt: str | None,
) -> list[str]:
    """For each training row with context: its prompt as stored, as evaluation renders the
    pair's question with the same chunks, and as serving renders a client's request (the pair
    without its system prompt, which the server adds) with them. Returns what differs."""
    context = ContextFormat(retrieval.k, retrieval.max_context_chars)
    pairs = sft_pairs.set_index(sft_pairs["pair_id"].astype(str))["messages"]
    known = set(rag_chunks["chunk_id"])
    problems = []
    for row in grounded_rows.itertuples():
        pair_id = str(row.pair_id)
        ids = [str(chunk_id) for chunk_id in row.context_chunk_ids]
        if pair_id not in pairs.index or set(ids) - known:
            problems.append(f"{pair_id}: its pair or chunks {sorted(set(ids) - known)} are gone")
            continue
        chunks = _chunks(rag_chunks, ids)
        stored = _plain(row.messages)[:-1]
        prompt = _plain(pairs[pair_id])[:-1]

        search = _found(chunks)
        evaluation = ground_prompts([prompt], _found_many(chunks), context, system_prompt)
        evaluated = evaluation.conversations[0]
        request = [
            m for m in prompt if not (m["role"] == "system" and m["content"] == system_prompt)
        ]
        served, _, _ = request_prompt(request, system_prompt, search, context)
        for side, rendered in (("evaluation", evaluated), ("serving", served)):
            if rendered != stored:
                problems.append(f"{pair_id}: {side} renders another prompt than training stored")
        if question_of(_plain(row.messages)) != prompt[-1]["content"]:
            problems.append(f"{pair_id}: the stored question is not the pair's")
    return problems
