"""Retrieval-augmented training rows (RAFT, Zhang et al. 2024, arXiv 2403.10131).

Each training prompt carries the chunks of the knowledge index closest to its question. In a
share of the rows (`oracle_share`) the context holds the oracle, the chunk closest to the
row's answer; in the rest it holds only distractors, so the model learns both to read the
context and to answer (or decline) when the context does not help. The context is rendered by
`llm_assets.rag.context.grounded_messages`, as evaluation and serving render it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import pandas as pd

from llm_assets.rag.context import grounded_messages
from llm_assets.rag.index import RetrievedChunk
from llm_assets.settings import RetrievalConfig

SearchMany = Callable[[Sequence[str], int], list[list[RetrievedChunk]]]

# An answer whose closest chunk is further than this holds no documented fact (a refusal, a
# greeting): its rows get distractors only. Cosine similarity of all-MiniLM-L6-v2 vectors.
ORACLE_MIN_SCORE = 0.5
# `question_relevance`: the closest chunk's score for the question, which calibrates the scope
# guard (llm_assets.serving.guardrails).
RAFT_COLUMNS = [
    "context_chunk_ids",
    "oracle_chunk_id",
    "context_has_oracle",
    "question_relevance",
]


@dataclass(frozen=True)
class RaftContext:
    """One row's context and whether it holds the oracle."""

    chunks: list[RetrievedChunk]
    oracle_chunk_id: str
    has_oracle: bool


def includes_oracle(pair_id: str, seed: int, share: float) -> bool:
    """Whether the row `pair_id` gets the oracle: a hash of the id and seed under `share`, so
    the choice is the same in every run and independent of row order."""
    digest = hashlib.sha256(f"{seed}:{pair_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


def _same_passage(a: RetrievedChunk, b: RetrievedChunk) -> bool:
    return (a.source, a.record_id, a.heading) == (b.source, b.record_id, b.heading)


def raft_context(
    question_hits: Sequence[RetrievedChunk],
    oracle: RetrievedChunk | None,
    with_oracle: bool,
    k: int,
) -> RaftContext:
    """The `k` chunks of one row. With the oracle: the closest hits to the question, the oracle
    put in place of the last one when retrieval missed it. Without: the closest hits outside
    the oracle's section (every chunk of it may state the answer)."""
    if oracle is None:
        return RaftContext(list(question_hits[:k]), "", False)
    if with_oracle:
        chosen = list(question_hits[:k])
        if all(chunk.chunk_id != oracle.chunk_id for chunk in chosen):
            chosen = [*chosen[: k - 1], oracle]
        return RaftContext(chosen, oracle.chunk_id, True)
    distractors = [chunk for chunk in question_hits if not _same_passage(chunk, oracle)]
    return RaftContext(distractors[:k], oracle.chunk_id, False)


def oracle_within_budget(
    chunks: Sequence[RetrievedChunk], oracle_chunk_id: str, used: Sequence[str]
) -> list[RetrievedChunk]:
    """`chunks` with the oracle moved into the place of the last chunk that made it into the
    context (`used`, the ids `grounded_messages` kept), and the chunks after it dropped."""
    oracle = next(chunk for chunk in chunks if chunk.chunk_id == oracle_chunk_id)
    fitted = [chunk for chunk in chunks if chunk.chunk_id in used and chunk is not oracle]
    return [*fitted[: max(len(fitted) - 1, 0)], oracle]


def question_of(messages: Sequence[dict[str, str]]) -> str:
    """The user message the final answer replies to."""
    return next(m["content"] for m in reversed(messages[:-1]) if m["role"] == "user")


def with_retrieved_context(
    pairs: pd.DataFrame, search_many: SearchMany, config: RetrievalConfig, seed: int
) -> pd.DataFrame:
    """`pairs` with every prompt grounded in retrieved context (`messages` rewritten) and the
    columns RAFT_COLUMNS saying which chunks each row read."""
    if pairs.empty:
        return pairs.assign(**{column: [] for column in RAFT_COLUMNS})
    conversations = [[dict(m) for m in messages] for messages in pairs["messages"]]
    # Enough candidates that k remain once the oracle's section is left out.
    question_hits = search_many([question_of(m) for m in conversations], 3 * config.k)
    answer_hits = search_many([str(m[-1]["content"]) for m in conversations], 1)
    grounded, used_ids, contexts = [], [], []
    for pair_id, messages, hits, best in zip(
        pairs["pair_id"].astype(str), conversations, question_hits, answer_hits, strict=True
    ):
        oracle = best[0] if best and best[0].score >= ORACLE_MIN_SCORE else None
        context = raft_context(
            hits, oracle, includes_oracle(pair_id, seed, config.oracle_share), config.k
        )
        prompt, used = grounded_messages(
            messages[:-1], context.chunks, None, config.max_context_chars
        )
        chunks = context.chunks
        while context.has_oracle and context.oracle_chunk_id not in used:
            # The character budget cut the oracle off (it came last): a row meant to hold the
            # answer would teach the model to answer from nothing. It takes the place of the
            # last chunk that fits, as often as needed (first place at worst).
            moved = oracle_within_budget(chunks, context.oracle_chunk_id, used)
            if moved == chunks:  # first already: the budget holds no chunk at all
                context = replace(context, has_oracle=False)
                break
            chunks = moved
            prompt, used = grounded_messages(messages[:-1], chunks, None, config.max_context_chars)
        grounded.append([*prompt, messages[-1]])
        used_ids.append(used)
        contexts.append(context)
    return pairs.assign(
        messages=grounded,
        context_chunk_ids=used_ids,
        oracle_chunk_id=[context.oracle_chunk_id for context in contexts],
        context_has_oracle=[context.has_oracle for context in contexts],
        question_relevance=[hits[0].score if hits else math.nan for hits in question_hits],
    )


def without_context_gaps(rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` with RAFT_COLUMNS filled (no context) on rows added after grounding, such as the
    planted canaries: a list column with missing values cannot become a `datasets` column."""
    filled = rows.copy()
    missing = filled["context_chunk_ids"].isna()
    filled.loc[missing, "oracle_chunk_id"] = ""
    filled.loc[missing, "context_has_oracle"] = False
    filled["context_chunk_ids"] = [
        [] if gap else ids for ids, gap in zip(filled["context_chunk_ids"], missing, strict=True)
    ]
    filled["context_has_oracle"] = filled["context_has_oracle"].astype(bool)
    filled["question_relevance"] = filled["question_relevance"].astype(float)
    return filled
