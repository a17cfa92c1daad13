"""Lexical search (BM25) over the chunks, and its fusion with dense search.

A sentence embedding places "What cipher encrypts my vault files?" near every chunk about the
vault, but it does not weigh the one rare word that matters: the chunk holding the cipher's name
can rank sixth among six vault chunks. BM25 scores exactly those rare words (names, settings,
file names, error codes) and misses paraphrases, which the embedding catches. Hybrid search
runs both and fuses their rankings by reciprocal rank (Cormack et al. 2009): no score
calibration between the two, and a chunk both rank high comes first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

# RRF's constant: 60 in Cormack et al. and in most search engines' defaults; it damps the
# difference between rank 1 and rank 2 so that one ranking alone cannot decide the order.
RRF_K = 60


def reciprocal_rank_fusion(rankings: Sequence[Sequence[str]], k: int = RRF_K) -> list[str]:
    """The items of `rankings` (each best first) ordered by the sum over rankings of
    1 / (k + rank); ties keep the order in which the items were first met."""
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    first_seen = {item: position for position, item in enumerate(scores)}
    return sorted(scores, key=lambda item: (-scores[item], first_seen[item]))


# bm25s's word pattern: runs of two or more word characters.
_WORD = re.compile(r"(?u)\b\w\w+\b")


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _question_stop_words() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    # The longer list: "what", "which", "how", "my" say nothing about where an answer is.
    return frozenset(STOPWORDS_EN_PLUS)


def content_words(text: str) -> set[str]:
    """The stemmed words of `text` that are not stop words: split and stemmed as the BM25 index
    splits them, with the longer stop-word list."""
    stop = _question_stop_words()
    words = [word for word in _WORD.findall(text.lower()) if word not in stop]
    return set(_stemmer().stemWords(words))


class LexicalIndex:
    """BM25 (bm25s, Lucene's variant) over `documents`, English stop words dropped and words
    stemmed (Snowball), so "uploaded" finds "upload"."""

    def __init__(self, documents: Sequence[str]) -> None:
        import bm25s

        self._stemmer = _stemmer()
        self._size = len(documents)
        self._bm25: Any = bm25s.BM25()
        if documents:
            tokens = bm25s.tokenize(list(documents), stemmer=self._stemmer, show_progress=False)
            self._bm25.index(tokens, show_progress=False)

    def __len__(self) -> int:
        return self._size

    def search(self, queries: Sequence[str], k: int) -> list[list[int]]:
        """For each query, the positions of at most `k` documents it shares a word with, best
        first; a query that shares none gets an empty list (no lexical evidence, not a tie)."""
        import bm25s

        if not queries:
            return []
        depth = min(k, self._size)
        if depth == 0:
            return [[] for _ in queries]
        tokens = bm25s.tokenize(
            list(queries), stemmer=self._stemmer, show_progress=False, return_ids=False
        )
        # A query of stop words only has nothing to match: it is not searched.
        results: list[list[int]] = [[] for _ in queries]
        asked = [i for i, words in enumerate(tokens) if words]
        if not asked:
            return results
        found, scores = self._bm25.retrieve(
            [tokens[i] for i in asked], k=depth, show_progress=False, n_threads=1
        )
        for i, rows, row_scores in zip(asked, found, scores, strict=True):
            results[i] = [
                int(row) for row, score in zip(rows, row_scores, strict=True) if score > 0
            ]
        return results
