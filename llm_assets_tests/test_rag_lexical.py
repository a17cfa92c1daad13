from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from llm_assets.rag.config import RagConfig
from llm_assets.rag.context import (
    CONTEXT_PREAMBLE,
    context_text,
    focused_excerpt,
    grounded_messages,
)
from llm_assets.rag.index import FaissStore, RetrievedChunk, write_faiss_store
from llm_assets.rag.lexical import LexicalIndex, content_words, reciprocal_rank_fusion
from llm_assets.rag.retrieval import search_over
from llm_assets_tests.test_rag_retrieval import _chunks


def test_reciprocal_rank_fusion_sums_one_over_k_plus_rank() -> None:
    # a: 1/61; b: 1/62; c: 1/63 + 1/61; d: 1/62 (ties with b, met after it).
    assert reciprocal_rank_fusion([["a", "b", "c"], ["c", "d"]]) == ["c", "a", "b", "d"]
    # A small k lets one ranking's first place outweigh another's second and third.
    assert reciprocal_rank_fusion([["a", "b"], ["b", "a"]], k=1) == ["a", "b"]
    assert reciprocal_rank_fusion([["x"], []]) == ["x"]
    assert reciprocal_rank_fusion([]) == []


def test_lexical_index_ranks_the_rare_word_and_stems() -> None:
    index = LexicalIndex(
        [
            "The vault encrypts files on your computer before upload.",
            "Each file in the vault is encrypted with XChaCha20-Poly1305.",
            "Thumbs.db and desktop.ini are never uploaded.",
        ]
    )
    assert len(index) == 3
    found = index.search(["Which cipher is XChaCha20?", "is Thumbs.db uploading", "the of"], 3)
    assert found[0] == [1]
    assert found[1][0] == 2  # "uploading" stems like "uploaded"
    assert found[2] == []  # stop words only: nothing to match, not a tie between all
    assert index.search(["zebra unicorn"], 3) == [[]]
    assert index.search([], 3) == []
    assert LexicalIndex([]).search(["vault"], 3) == [[]]


class _FixedEmbedder:
    """Queries embedded as given in `vectors` (a test double for the sentence model)."""

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self.vectors = vectors

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        return np.vstack([self.vectors[text] for text in texts])

    def describe(self) -> dict[str, Any]:
        return {}


def _store(tmp_path: Path, texts: list[str], vectors: np.ndarray) -> FaissStore:
    write_faiss_store(tmp_path, _chunks(len(texts)).assign(text=texts), vectors, 10_000)
    return FaissStore(tmp_path)


def test_hybrid_search_brings_up_the_chunk_only_its_words_find(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(30, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    texts = [f"general vault text number {i}" for i in range(30)]
    texts[17] = "The Windows installer is AuroraSyncSetup-4.2.exe."
    question = "What is the Windows installer called?"
    query = vectors[3] + 0.05 * vectors[4]
    query /= np.linalg.norm(query)
    embedder = _FixedEmbedder({question: query})
    store = _store(tmp_path, texts, vectors)

    dense = search_over(store, embedder, "dense", candidates=5, rrf_k=60).retrieve(question, 3)
    assert "s/r17#0" not in [hit.chunk_id for hit in dense]

    hybrid = search_over(store, embedder, "hybrid", candidates=5, rrf_k=60).retrieve(question, 3)
    ids = [hit.chunk_id for hit in hybrid]
    assert ids[0] == "s/r3#0"  # dense first, no lexical match: 1/61 + 0
    assert ids[1] == "s/r17#0"  # lexical first, beyond the dense candidates: 1/61 + 0 (later)
    # Every hit is scored by its cosine similarity, also the one dense search never returned.
    for hit in hybrid:
        row = int(hit.chunk_id.removeprefix("s/r").removesuffix("#0"))
        assert hit.score == pytest.approx(float(vectors[row] @ query), abs=1e-5)


def test_hybrid_search_needs_a_faiss_store() -> None:
    with pytest.raises(ValidationError, match="search: hybrid"):
        RagConfig(search="hybrid", store="pgvector")
    assert RagConfig(search="hybrid").search == "hybrid"


def test_content_words_are_stemmed_and_leave_out_question_words() -> None:
    assert content_words("Which files are uploaded to my vault?") == {"file", "upload", "vault"}
    assert content_words("what is it") == set()


def test_a_cut_chunk_keeps_the_passage_the_question_asks_about() -> None:
    text = (
        "Selective sync lets you choose folders. Online-only files take no disk space. "
        "Files named Thumbs.db and desktop.ini are never uploaded."
    )
    asked = content_words("Is Thumbs.db uploaded?")
    assert (
        focused_excerpt(text, 60, asked)
        == "Files named Thumbs.db and desktop.ini are never uploaded."
    )
    assert focused_excerpt(text, 60, set()) == text[:60]  # no question: the head
    assert focused_excerpt(text, 60, {"zebra"}) == text[:60]  # nothing matches: the head
    assert focused_excerpt(text, len(text), asked) == text  # fits: whole


def test_context_is_cut_around_the_question_in_every_stage() -> None:
    def chunk(number: int, text: str) -> RetrievedChunk:
        return RetrievedChunk(f"docs/a#{number}", "a", "docs", "a.md", "", text, 0.5)

    first = chunk(0, "Selective sync lets you choose which folders sync. " * 4)
    second = chunk(1, "Online-only files take no space. Thumbs.db files are never uploaded.")
    question = [{"role": "user", "content": "Is Thumbs.db uploaded?"}]
    budget = len(CONTEXT_PREAMBLE) + 2 * len("\n\n[1] (a.md)\n") + len(first.text) - 4 + 45
    text, used = context_text([first, second], budget, "Is Thumbs.db uploaded?")
    assert used == ["docs/a#0", "docs/a#1"]
    assert text.endswith("Thumbs.db files are never uploaded.")
    assert not context_text([first, second], budget)[0].endswith("never uploaded.")
    # Serving, evaluation and training all build prompts with grounded_messages: the same cut.
    messages, _ = grounded_messages(question, [first, second], None, budget)
    assert messages[0]["content"] == text
