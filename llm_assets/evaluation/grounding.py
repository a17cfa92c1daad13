"""Evaluation with retrieval: prompts grounded in the knowledge index exactly as serving
grounds them, and how much of each answer the question and the context support.

Groundedness is the share of an answer's content terms (words that are not stop words,
numbers, paths, commands, URLs) that appear in the question or the retrieved context. An
answer that invents a port, a price or a menu path scores low, whatever its fluency.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from llm_assets.datasets.retrieval import SearchMany
from llm_assets.rag.context import ContextFormat, context_text, grounded_messages, last_question

# URLs, paths and dotted names, numbers (with units glued on), and words.
_TERM = re.compile(
    r"https?://[^\s)>\]]+"
    r"|[\w~$.-]*[/\\][\w~$./\\-]+"
    r"|\d[\d.,:%]*\w*"
    r"|[A-Za-z][A-Za-z0-9_'-]*"
)


@lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


def content_terms(text: str) -> list[str]:
    """The terms of `text` that carry content, folded to lower case, trailing punctuation off."""
    stop = _stop_words()
    terms = []
    for match in _TERM.finditer(text):
        term = match.group(0).rstrip(".,:;!?'").casefold()
        if term and term not in stop and (len(term) > 2 or any(c.isdigit() for c in term)):
            terms.append(term)
    return terms


def groundedness(answer: str, evidence: Sequence[str]) -> float:
    """The share of `answer`'s content terms found among the terms of `evidence` (the question
    and the context); 1.0 for an answer without content terms."""
    terms = content_terms(answer)
    if not terms:
        return 1.0
    known = {term for text in evidence for term in content_terms(text)}
    return sum(term in known for term in terms) / len(terms)


@dataclass(frozen=True)
class GroundedPrompts:
    """Conversations as the model reads them, the chunk ids each one's context used with their
    texts, and the context text (empty closed-book)."""

    conversations: list[list[dict[str, str]]]
    chunk_ids: list[list[str]]
    chunk_texts: list[list[str]]
    contexts: list[str]
    # The closest chunk's score for each question (None closed-book): the scope guard reads it.
    top_relevance: list[float | None]
    # The same conversation without its context where it has one (None where it has none):
    # what context-aware decoding contrasts the answer against.
    closed_book: list[list[dict[str, str]] | None]


def ground_prompts(
    prompts: Sequence[list[dict[str, str]]],
    search_many: SearchMany | None,
    context: ContextFormat,
    system_prompt: str | None,
) -> GroundedPrompts:
    """Each prompt (a conversation ending with the user's question) with the system prompt and,
    with `search_many`, the `context.k` closest chunks: what serving sends the model."""
    if search_many is None:
        grounded = [grounded_messages(list(p), [], system_prompt, 0)[0] for p in prompts]
        empty: list[list[str]] = [[] for _ in prompts]
        return GroundedPrompts(
            grounded,
            empty,
            [[] for _ in prompts],
            ["" for _ in prompts],
            [None for _ in prompts],
            [None for _ in prompts],
        )
    hits = search_many([last_question(p) for p in prompts], context.k) if prompts else []
    conversations, ids, chunk_texts, contexts = [], [], [], []
    closed_book: list[list[dict[str, str]] | None] = []
    for prompt, chunks in zip(prompts, hits, strict=True):
        messages, used = grounded_messages(list(prompt), chunks, system_prompt, context.max_chars)
        conversations.append(messages)
        ids.append(used)
        chunk_texts.append([chunk.text for chunk in chunks if chunk.chunk_id in used])
        contexts.append(
            context_text(chunks, context.max_chars, last_question(prompt))[0] if used else ""
        )
        closed_book.append(
            grounded_messages(list(prompt), [], system_prompt, 0)[0] if used else None
        )
    top = [chunks[0].score if chunks else None for chunks in hits]
    return GroundedPrompts(conversations, ids, chunk_texts, contexts, top, closed_book)
