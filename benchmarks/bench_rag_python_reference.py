"""Retrieval on documentation this project did not write: the Python language reference.

    .venv/bin/python benchmarks/bench_rag_python_reference.py

The corpus is the reference's topics as CPython ships them (`pydoc_data.topics`: 79 topics,
about 465k characters on 3.11, written by Python's developers), so it is on every machine that
runs the project and nothing is fetched. The questions (`benchmarks/data/python_reference_facts
.jsonl`, 40 over 31 topics, each with the exact words of its fact) were written from the topic
texts before any search ran over them, and were not used to choose a setting.

The topics go through the project's own steps with the default profile's `rag:` settings:
`chunk_records` (paragraph chunks of the embedding model's tokens), the embedder (ONNX int8
all-MiniLM-L6-v2), a FAISS store, and `search_over` for dense and hybrid search. For each
search it counts the questions whose fact is in the top-1/3/5 chunks and in the context
rendered from the top 3 (`context_text`, cut at the head or around the question), times a
query, and lists the questions one search finds and the other does not. Prints a table and
writes JSON.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from llm_assets.storage import write_json_atomically

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "benchmarks" / "data" / "python_reference_facts.jsonl"


def reference_records() -> pd.DataFrame:
    from pydoc_data.topics import topics

    return pd.DataFrame(
        [
            {"source": "python-reference", "record_id": name, "uri": name, "text": text}
            for name, text in sorted(topics.items())
        ]
    )


@dataclass
class ReferenceIndex:
    """The Python reference chunked, embedded and stored as the profile's `rag:` says."""

    records: pd.DataFrame
    chunks: pd.DataFrame
    store: Any  # FaissStore
    embedder: Any
    embed_seconds: float

    def retriever(self, search: str, rag: Any) -> Any:
        from llm_assets.rag.retrieval import search_over

        return search_over(self.store, self.embedder, search, rag.hybrid_candidates, rag.rrf_k)


def reference_index(rag: Any, work: Path) -> ReferenceIndex:
    """Chunks, vectors and a FAISS store of the reference under `work`, made by the project's
    own functions with `rag` (a profile's RagConfig)."""
    from llm_assets.rag.chunking import chunk_records, text_to_embed
    from llm_assets.rag.embedding import load_embedder
    from llm_assets.rag.index import FaissStore, write_faiss_store

    embedder = load_embedder(
        rag.embedding_model, rag.embedding_backend, rag.batch_size, cache_root=work / "embedder"
    )
    records = reference_records()
    chunks = chunk_records(
        records, rag.chunking, embedder.token_spans, rag.window_tokens, rag.overlap_tokens
    )
    started = time.perf_counter()
    vectors = embedder.encode(
        [text_to_embed(h, t) for h, t in zip(chunks["heading"], chunks["text"], strict=True)]
    )
    embed_seconds = time.perf_counter() - started
    (work / "store").mkdir(parents=True)
    write_faiss_store(work / "store", chunks, vectors, rag.ann_min_chunks, rag.hnsw_m)
    return ReferenceIndex(records, chunks, FaissStore(work / "store"), embedder, embed_seconds)


def main() -> None:
    from llm_assets.evaluation.facts import facts_stated, read_fact_questions
    from llm_assets.rag.context import context_text
    from llm_assets.settings import load_profile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", type=Path, default=ROOT / "conf" / "smollm2.yaml")
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--budgets", type=int, nargs="+", default=[800, 1000, 1200])
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "benchmarks/results/bench_rag_python_reference.json",
    )
    args = parser.parse_args()

    rag = load_profile(args.profile).rag
    questions = read_fact_questions(args.questions)
    asked = questions["instruction"].tolist()
    facts = questions["facts"].tolist()
    index = reference_index(rag, Path(tempfile.mkdtemp(prefix="bench_rag_python_reference-")))
    records, chunks, embed_seconds = index.records, index.chunks, index.embed_seconds

    rows: list[dict[str, Any]] = []
    found_at_3: dict[str, list[bool]] = {}
    for search in ("dense", "hybrid"):
        retriever = index.retriever(search, rag)
        retriever.retrieve_many(["warm-up"], 5)
        started = time.perf_counter()
        hits = retriever.retrieve_many(asked, 5)
        ms = (time.perf_counter() - started) / len(asked) * 1000
        row: dict[str, Any] = {"search": search, "ms_per_query": round(ms, 2)}
        for k in (1, 3, 5):
            row[f"fact_in_top_{k}"] = sum(
                any(facts_stated(chunk.text, fact) for chunk in chunks_[:k])
                for chunks_, fact in zip(hits, facts, strict=True)
            )
        found_at_3[search] = [
            any(facts_stated(chunk.text, fact) for chunk in chunks_[:3])
            for chunks_, fact in zip(hits, facts, strict=True)
        ]
        for budget in args.budgets:
            for cut in ("head", "focused"):
                row[f"in_context_{budget}_{cut}"] = sum(
                    facts_stated(context_text(c[:3], budget, q if cut == "focused" else "")[0], f)
                    for c, q, f in zip(hits, asked, facts, strict=True)
                )
        rows.append(row)

    ids = questions["pair_id"].tolist()
    only = {
        f"only_{a}": [i for i, x, y in zip(ids, found_at_3[a], found_at_3[b], strict=True) if x > y]
        for a, b in (("dense", "hybrid"), ("hybrid", "dense"))
    }
    print(
        f"Python reference: {len(records)} topics, {len(chunks)} chunks "
        f"(embedded in {embed_seconds:.1f} s), {len(asked)} questions"
    )
    budgets_header = " ".join(f"{b}h/{b}f" for b in args.budgets)
    print(f"{'search':<7} {'top1':>4} {'top3':>4} {'top5':>4}  context {budgets_header}  ms/query")
    for row in rows:
        cells = " ".join(
            f"{row[f'in_context_{b}_head']:>4}/{row[f'in_context_{b}_focused']:<4}"
            for b in args.budgets
        )
        print(
            f"{row['search']:<7} {row['fact_in_top_1']:>4} {row['fact_in_top_3']:>4} "
            f"{row['fact_in_top_5']:>4}          {cells}  {row['ms_per_query']:.1f}"
        )
    print(f"top 3, found by one search only: {only}")
    result = {
        "command": "python benchmarks/bench_rag_python_reference.py",
        "corpus": {
            "python": platform.python_version(),
            "topics": len(records),
            "characters": int(records["text"].str.len().sum()),
            "chunks": len(chunks),
        },
        "questions": len(asked),
        "results": rows,
        **only,
    }
    write_json_atomically(args.output, result)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
