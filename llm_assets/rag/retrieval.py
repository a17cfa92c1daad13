"""`retrieve(query, k)` over a materialized index, and how well it finds golden questions'
records (recall@k and MRR).

Golden questions: each golden pair's instruction (with its input, when it has one) is a query,
and the record the pair came from is the one relevant record. A question is recalled at k when
any of the top-k chunks belongs to that record, so recall@k is the share of questions whose
record is found, and MRR the mean of 1/rank of its first chunk (0 when not in the top k).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import cast

import pandas as pd

from llm_assets.contracts import RagIndex
from llm_assets.rag.embedding import Embedder, embedder_from_description
from llm_assets.rag.index import FaissStore, RetrievedChunk, StoreError, VectorStore, open_store
from llm_assets.rag.lexical import RRF_K, LexicalIndex, reciprocal_rank_fusion
from llm_assets.settings import state_dir

# Where the asset store keeps the rag_index manifest (LocalAssetIOManager: <key>.json).
MANIFEST_NAME = "rag_index.json"


class Retriever:
    """A store and the embedder its vectors were made with; with `lexical` (hybrid search),
    also BM25 over the same chunks, the two rankings fused by reciprocal rank."""

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        lexical: LexicalIndex | None = None,
        candidates: int = 50,
        rrf_k: int = RRF_K,
    ) -> None:
        self.store = store
        self.embedder = embedder
        self.lexical = lexical
        self.candidates = candidates
        self.rrf_k = rrf_k

    def retrieve(self, query: str, k: int = 5) -> list[RetrievedChunk]:
        """The `k` chunks closest to `query`, closest first."""
        return self.retrieve_many([query], k)[0]

    def retrieve_many(self, queries: Sequence[str], k: int = 5) -> list[list[RetrievedChunk]]:
        """For each query its `k` best chunks, best first, each scored by its cosine similarity
        to the query (also in hybrid search, where the order is the fused one)."""
        if not queries:
            return []
        vectors = self.embedder.encode(list(queries))
        if self.lexical is None:
            return self.store.search(vectors, k)
        store = cast(FaissStore, self.store)  # search_over gives lexical search a FAISS store
        # Each ranking is read to the same depth, so a chunk only one of them finds can still
        # come first when that one ranks it high.
        depth = max(k, self.candidates)
        dense = store.search(vectors, depth)
        lexical = self.lexical.search(queries, depth)
        results = []
        for vector, dense_hits, lexical_rows in zip(vectors, dense, lexical, strict=True):
            found = {hit.chunk_id: hit for hit in dense_hits}
            lexical_ids = {store.chunk_id_at(row): row for row in lexical_rows}
            best = reciprocal_rank_fusion([list(found), list(lexical_ids)], self.rrf_k)[:k]
            only_lexical = [lexical_ids[chunk_id] for chunk_id in best if chunk_id not in found]
            found.update({hit.chunk_id: hit for hit in store.chunks_at(vector, only_lexical)})
            results.append([found[chunk_id] for chunk_id in best])
        return results


def open_retriever(manifest: RagIndex) -> Retriever:
    """The retriever of a `rag_index` manifest: its store, its embedder loaded again, and the
    search it was measured with."""
    return search_over(
        open_store(manifest),
        embedder_from_description(dict(manifest.embedder)),
        manifest.search,
        manifest.hybrid_candidates,
        manifest.rrf_k,
    )


def search_over(
    store: VectorStore, embedder: Embedder, search: str, candidates: int, rrf_k: int
) -> Retriever:
    """A retriever over `store`: dense, or hybrid with a BM25 index of the store's chunks
    (built when opened: about a second per 10k chunks)."""
    if search == "dense":
        return Retriever(store, embedder)
    if not isinstance(store, FaissStore):
        raise StoreError(
            f"{search} search reads the chunks of a FAISS store; this index is in "
            f"{type(store).__name__} (set rag.search: dense, or rag.store: faiss)"
        )
    lexical = LexicalIndex(store.lexical_documents())
    return Retriever(store, embedder, lexical, candidates=candidates, rrf_k=rrf_k)


def default_manifest_path() -> Path:
    return state_dir() / "assets" / MANIFEST_NAME


def read_manifest(path: Path | None = None) -> RagIndex:
    """The manifest of the latest materialized rag_index (default: under the state folder)."""
    path = Path(path or default_manifest_path())
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: no rag_index has been materialized here yet; run "
            "`llm-assets materialize --select '+rag_index'` (or pass --index PATH)"
        )
    return RagIndex.model_validate_json(path.read_text(encoding="utf-8"))


@lru_cache(maxsize=4)
def _cached_retriever(manifest_path: str, modified: float) -> Retriever:
    return open_retriever(read_manifest(Path(manifest_path)))


def retrieve(query: str, k: int = 5, manifest_path: Path | None = None) -> list[RetrievedChunk]:
    """The `k` chunks of the latest materialized rag_index closest to `query`, closest first.

    The store and embedder are opened once per process and reopened when the index changes."""
    path = Path(manifest_path or default_manifest_path()).resolve()
    read_manifest(path)  # a clear error when nothing is materialized
    return _cached_retriever(str(path), path.stat().st_mtime).retrieve(query, k)


def golden_queries(golden: pd.DataFrame, indexed_records: set[str] | None = None) -> pd.DataFrame:
    """One query per distinct golden question: `query` and its `relevant_record`
    (`<source>/<record_id>`), with the pair's `source`. With `indexed_records`, questions whose
    record is not in the index are left out: no chunk could be right for them (a hand-written
    golden question, or a source not indexed)."""
    rows = []
    for pair in golden.to_dict("records"):
        record = f"{pair['source']}/{pair['record_id']}"
        if indexed_records is not None and record not in indexed_records:
            continue
        instruction = str(pair.get("instruction") or "").strip()
        extra = str(pair.get("input") or "").strip()
        query = f"{instruction}\n\n{extra}" if extra else instruction
        if query:
            rows.append(
                {
                    "query": query,
                    "relevant_record": record,
                    "source": str(pair["source"]),
                }
            )
    frame = pd.DataFrame(rows, columns=["query", "relevant_record", "source"])
    return frame.drop_duplicates(["query", "relevant_record"]).reset_index(drop=True)


def first_relevant_rank(ranked: Sequence[str], relevant: str) -> int | None:
    """1-based rank of the first entry of `ranked` equal to `relevant`, or None."""
    for rank, item in enumerate(ranked, start=1):
        if item == relevant:
            return rank
    return None


def recall_at_k(ranked: Sequence[Sequence[str]], relevant: Sequence[str], k: int) -> float:
    """Share of queries whose relevant item is among their first `k` results."""
    if not ranked:
        return 0.0
    hits = [
        first_relevant_rank(items[:k], target) is not None
        for items, target in zip(ranked, relevant, strict=True)
    ]
    return sum(hits) / len(hits)


def mean_reciprocal_rank(ranked: Sequence[Sequence[str]], relevant: Sequence[str], k: int) -> float:
    """Mean over queries of 1/rank of the relevant item within the first `k` (0 if absent)."""
    if not ranked:
        return 0.0
    total = 0.0
    for items, target in zip(ranked, relevant, strict=True):
        rank = first_relevant_rank(items[:k], target)
        total += 1 / rank if rank else 0.0
    return total / len(ranked)


@dataclass
class RetrievalQuality:
    k: int
    queries: int
    recall_at_k: float
    mrr: float
    by_source: dict[str, dict[str, float]] = field(default_factory=dict)
    misses: pd.DataFrame = field(default_factory=pd.DataFrame)
    unjudged: int = 0


def evaluate_retrieval(
    retriever: Retriever, golden: pd.DataFrame, k: int, indexed_records: set[str]
) -> RetrievalQuality:
    """recall@k and MRR of `retriever` on the questions of `golden` whose record is among
    `indexed_records`, overall and per source; `misses` lists the questions whose record was
    not found, `unjudged` counts the golden pairs left out."""
    queries = golden_queries(golden, indexed_records)
    unjudged = len(golden_queries(golden)) - len(queries)
    hits = retriever.retrieve_many(queries["query"].tolist(), k)
    ranked = [[f"{hit.source}/{hit.record_id}" for hit in query_hits] for query_hits in hits]
    relevant = queries["relevant_record"].tolist()
    by_source = {}
    for source, rows in queries.groupby("source").groups.items():
        positions = list(rows)
        subset = [ranked[i] for i in positions]
        targets = [relevant[i] for i in positions]
        by_source[str(source)] = {
            "queries": len(positions),
            "recall_at_k": recall_at_k(subset, targets, k),
            "mrr": mean_reciprocal_rank(subset, targets, k),
        }
    missed = [first_relevant_rank(r, t) is None for r, t in zip(ranked, relevant, strict=True)]
    misses = queries[missed].assign(
        top_hit=[ranked[i][0] if ranked[i] else "" for i, miss in enumerate(missed) if miss]
    )
    return RetrievalQuality(
        k=k,
        queries=len(queries),
        recall_at_k=recall_at_k(ranked, relevant, k),
        mrr=mean_reciprocal_rank(ranked, relevant, k),
        by_source=by_source,
        misses=misses,
        unjudged=unjudged,
    )
