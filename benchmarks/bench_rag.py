"""RAG: embedding throughput and retrieval quality of the project's embedder against a plain
`SentenceTransformer.encode`, and vector-store query latency at 100k chunks.

    .venv/bin/python benchmarks/bench_rag.py                 # about 10 minutes on 2 cores
    .venv/bin/python benchmarks/bench_rag.py --chunks 200 --repeats 2 --store-rows 20000

Chunks: the sample corpus in data/sample (Markdown guides, support tickets) cut by the project's
chunker with the default `RagConfig` (paragraphs, 128-token windows, 32 overlap).

1. Throughput (chunks/s) on the same `--chunks` chunks, contenders interleaved `--repeats`
   times (the cores are shared with other work, so single timings are noisy; the ratio of
   medians in one run is the number to read):
   - `sentence-transformers (torch fp32)`: `SentenceTransformer(model).encode(texts,
     batch_size=32, normalize_embeddings=True)`, the library's defaults on CPU.
   - `llm_assets onnx-int8`: the project's default embedder (`OnnxInt8Embedder`).
   sentence-transformers' own `backend="onnx"` needs optimum-onnx, whose only release pins
   transformers<4.58, older than this project's; it is not installed, so not measured.
2. Retrieval quality, fp32 against int8 on the same index: each ticket subject is a query over
   the chunks of every ticket's body and resolution (subject left out) and every guide; a hit is
   a chunk of a ticket with that subject. recall@k and MRR@k with the project's functions.
3. Query latency of the project's `FaissStore.search` (k=10, one query at a time) at
   `--store-rows` chunks, exact (flat) and HNSW (the default from `ann_min_chunks` on), with
   HNSW's recall@10 against exact search. The vectors are synthetic (384-d unit vectors with
   32-d latent structure, queries perturbed copies of stored rows): embedding 100k real chunks
   here would take an hour. LanceDB's IVF_HNSW_SQ is measured beside it when `lancedb` is
   importable (it is not a project dependency: `.venv/bin/pip install lancedb`).

Prints tables and writes benchmarks/results/bench_rag.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import llm_assets  # noqa: F401  (keeps every library offline)
from llm_assets.rag.chunking import chunk_records, text_to_embed
from llm_assets.rag.embedding import BUNDLED_MODEL, load_embedder, resolve_model
from llm_assets.rag.index import FaissStore, write_faiss_store
from llm_assets.rag.onnx_int8 import OnnxInt8Embedder
from llm_assets.rag.retrieval import mean_reciprocal_rank, recall_at_k
from llm_assets.settings import RagConfig

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "bench_rag.json"
SAMPLE = ROOT / "data" / "sample"


def sample_corpus() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(corpus, queries): guides and tickets (text: body, response: resolution) as records,
    and one query per distinct ticket subject with the ids of the tickets that carry it."""
    records = [
        {"record_id": path.name, "source": "docs", "text": path.read_text(encoding="utf-8")}
        for path in sorted((SAMPLE / "docs").glob("*.md"))
    ]
    subjects: dict[str, list[str]] = {}
    for line in (SAMPLE / "tickets" / "tickets.jsonl").read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # the sample plants malformed lines for the cleaning stage
        if not isinstance(row, dict) or not row.get("body") or not row.get("subject"):
            continue
        records.append(
            {
                "record_id": row["ticket_id"],
                "source": "tickets",
                "text": row["body"],
                "response": row.get("resolution"),
            }
        )
        subjects.setdefault(row["subject"].strip(), []).append(row["ticket_id"])
    queries = pd.DataFrame(
        [{"query": subject, "tickets": ids} for subject, ids in subjects.items()]
    )
    return pd.DataFrame(records), queries


def timed(encode: Callable[[Sequence[str]], np.ndarray], texts: list[str]) -> float:
    started = time.perf_counter()
    encode(texts)
    return len(texts) / (time.perf_counter() - started)


def quality(
    chunk_vectors: np.ndarray,
    query_vectors: np.ndarray,
    chunks: pd.DataFrame,
    queries: pd.DataFrame,
    k: int,
) -> dict[str, float]:
    """recall@k and MRR@k where a hit is a chunk of a ticket with the query's subject."""
    pairs = zip(queries["query"], queries["tickets"], strict=True)
    subject_of = {ticket: query for query, ids in pairs for ticket in ids}
    labels = [
        subject_of.get(record, f"docs/{record}") if source == "tickets" else f"docs/{record}"
        for source, record in zip(chunks["source"], chunks["record_id"], strict=True)
    ]
    scores = query_vectors @ chunk_vectors.T
    top = np.argsort(-scores, axis=1)[:, :k]
    ranked = [[labels[i] for i in row] for row in top]
    relevant = queries["query"].tolist()
    return {
        "recall_at_k": recall_at_k(ranked, relevant, k),
        "mrr_at_k": mean_reciprocal_rank(ranked, relevant, k),
    }


def synthetic_vectors(rows: int, queries: int, dim: int = 384, seed: int = 0) -> tuple:
    """Unit vectors with 32-d latent structure, and queries that are perturbed stored rows."""
    rng = np.random.default_rng(seed)
    projection = rng.normal(size=(32, dim)).astype(np.float32)
    base = rng.normal(size=(rows, 32)).astype(np.float32) @ projection
    base += 0.5 * rng.normal(size=(rows, dim)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    picked = rng.integers(0, rows, queries)
    probe = base[picked] + 0.02 * rng.normal(size=(queries, dim)).astype(np.float32)
    probe /= np.linalg.norm(probe, axis=1, keepdims=True)
    return base, probe


def latency(search: Callable[[np.ndarray], list[str]], queries: np.ndarray) -> dict[str, Any]:
    for vector in queries[:20]:  # warm caches
        search(vector)
    times, results = [], []
    for vector in queries:
        started = time.perf_counter()
        results.append(search(vector))
        times.append((time.perf_counter() - started) * 1000)
    return {
        "p50_ms": float(np.percentile(times, 50)),
        "p95_ms": float(np.percentile(times, 95)),
        "results": results,
    }


def store_latency(rows: int, query_count: int, k: int = 10) -> list[dict[str, Any]]:
    base, probe = synthetic_vectors(rows, query_count)
    chunks = pd.DataFrame(
        {
            "chunk_id": [f"synthetic/r{i}#0" for i in range(rows)],
            "record_id": [f"r{i}" for i in range(rows)],
            "source": "synthetic",
            "uri": "",
            "heading": "",
            "char_start": 0,
            "char_end": 0,
            "text": "",
        }
    )
    config = RagConfig()
    table = []
    exact: list[list[str]] = []
    with tempfile.TemporaryDirectory() as folder:
        for name, ann_min_chunks in (("faiss flat (exact)", rows + 1), ("faiss HNSW", 0)):
            path = Path(folder) / name.split()[1]
            path.mkdir()
            started = time.perf_counter()
            write_faiss_store(
                path, chunks, base, ann_min_chunks, config.hnsw_m, config.hnsw_ef_search
            )
            build = time.perf_counter() - started
            store = FaissStore(path)
            measured = latency(
                lambda v, s=store: [hit.chunk_id for hit in s.search(v, k)[0]], probe
            )
            found = measured.pop("results")
            exact = exact or found
            table.append({"store": name, "rows": rows, "build_s": build, **measured})
            table[-1]["recall_at_10_vs_exact"] = float(
                np.mean([len(set(a) & set(b)) / k for a, b in zip(found, exact, strict=True)])
            )
        table.append(lancedb_latency(Path(folder), chunks, base, probe, exact, k))
    return table


def lancedb_latency(
    folder: Path,
    chunks: pd.DataFrame,
    base: np.ndarray,
    probe: np.ndarray,
    exact: list[list[str]],
    k: int,
) -> dict[str, Any]:
    name = "lancedb IVF_HNSW_SQ (peer)"
    try:
        import lancedb
        import pyarrow as pa
        from lancedb.index import IvfHnswSq
    except ImportError:
        return {"store": name, "skipped": "lancedb not installed"}
    database = lancedb.connect(folder / "lancedb")
    vectors = pa.FixedSizeListArray.from_arrays(pa.array(base.ravel()), base.shape[1])
    table = database.create_table(
        "chunks", pa.table({"chunk_id": chunks["chunk_id"].tolist(), "vector": vectors})
    )
    started = time.perf_counter()
    table.create_index("vector", config=IvfHnswSq(distance_type="cosine", num_partitions=8))
    build = time.perf_counter() - started

    def search(vector: np.ndarray) -> list[str]:
        hits = table.search(vector).distance_type("cosine").limit(k)
        return hits.select(["chunk_id", "_distance"]).to_arrow()["chunk_id"].to_pylist()

    measured = latency(search, probe)
    found = measured.pop("results")
    recall = np.mean([len(set(a) & set(b)) / k for a, b in zip(found, exact, strict=True)])
    return {
        "store": name,
        "rows": len(base),
        "build_s": build,
        **measured,
        "recall_at_10_vs_exact": float(recall),
        "version": lancedb.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=400, help="chunks timed per contender")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--store-rows", type=int, default=100_000)
    parser.add_argument("--store-queries", type=int, default=1000)
    args = parser.parse_args()
    load_start = os.getloadavg()
    from sentence_transformers import SentenceTransformer

    config = RagConfig()
    model_path = resolve_model(BUNDLED_MODEL)
    with tempfile.TemporaryDirectory() as cache:
        started = time.perf_counter()
        int8 = load_embedder(BUNDLED_MODEL, "onnx-int8", config.batch_size, Path(cache))
        export_s = time.perf_counter() - started
        assert isinstance(int8, OnnxInt8Embedder)
        plain = SentenceTransformer(str(model_path), device="cpu")

        def plain_encode(texts: Sequence[str]) -> np.ndarray:
            return plain.encode(list(texts), batch_size=32, normalize_embeddings=True)

        corpus, queries = sample_corpus()
        chunks = chunk_records(
            corpus, config.chunking, int8.token_spans, config.window_tokens, config.overlap_tokens
        )
        texts = [
            text_to_embed(h, t) for h, t in zip(chunks["heading"], chunks["text"], strict=True)
        ]
        # Every n-th chunk: the timed subset keeps the corpus' mix of short and long chunks.
        step = max(1, len(texts) // args.chunks)
        timed_texts = texts[::step][: args.chunks]
        plain_encode(timed_texts[:32])
        int8.encode(timed_texts[:32])
        rates: dict[str, list[float]] = {"sentence-transformers (torch fp32)": [], "int8": []}
        for _ in range(args.repeats):
            rates["sentence-transformers (torch fp32)"].append(timed(plain_encode, timed_texts))
            rates["int8"].append(timed(int8.encode, timed_texts))
        rates["llm_assets onnx-int8"] = rates.pop("int8")
        baseline = statistics.median(rates["sentence-transformers (torch fp32)"])
        throughput = [
            {
                "embedder": name,
                "chunks": len(timed_texts),
                "chunks_per_s_median": statistics.median(values),
                "chunks_per_s_runs": values,
                "vs_plain_encode": statistics.median(values) / baseline,
            }
            for name, values in rates.items()
        ]
        fp32_chunks = plain_encode(texts)
        fp32_queries = plain_encode(queries["query"].tolist())
        int8_chunks = int8.encode(texts)
        int8_queries = int8.encode(queries["query"].tolist())
        retrieval = [
            {"embedder": "sentence-transformers (torch fp32)", "k": args.k}
            | quality(fp32_chunks, fp32_queries, chunks, queries, args.k),
            {"embedder": "llm_assets onnx-int8", "k": args.k}
            | quality(int8_chunks, int8_queries, chunks, queries, args.k),
        ]
        cosines = (fp32_chunks * int8_chunks).sum(axis=1)
        query_latency = latency(lambda q: [int8.encode([q])], queries["query"].tolist()[:100])
        query_latency.pop("results")
    stores = store_latency(args.store_rows, args.store_queries)
    results = {
        "command": "python benchmarks/bench_rag.py " + " ".join(sys.argv[1:]),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_start": load_start,
            "load_average_end": os.getloadavg(),
        },
        "versions": versions(),
        "corpus": {"records": len(corpus), "chunks": len(chunks), "queries": len(queries)},
        "onnx_export_s": export_s,
        "throughput": throughput,
        "retrieval": retrieval,
        "int8_vs_fp32_cosine": {"mean": float(cosines.mean()), "min": float(cosines.min())},
        "query_embedding_ms": query_latency,
        "store_latency": stores,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print_tables(results)


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("torch", "sentence-transformers", "onnxruntime", "faiss-cpu", "lancedb"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def print_tables(results: dict[str, Any]) -> None:
    print(
        f"\nload average at start/end: {results['machine']['load_average_start']} / "
        f"{results['machine']['load_average_end']} on {results['machine']['cpus']} cpus"
    )
    print("\nEmbedding throughput (same chunks, median of runs)")
    print(f"{'embedder':38} {'chunks/s':>9} {'vs plain':>9}")
    for row in results["throughput"]:
        print(
            f"{row['embedder']:38} {row['chunks_per_s_median']:9.1f} {row['vs_plain_encode']:8.2f}x"
        )
    print(
        f"\nRetrieval on {results['corpus']['queries']} ticket-subject queries over "
        f"{results['corpus']['chunks']} chunks"
    )
    print(f"{'embedder':38} {'recall@k':>9} {'MRR@k':>7}")
    for row in results["retrieval"]:
        print(f"{row['embedder']:38} {row['recall_at_k']:9.3f} {row['mrr_at_k']:7.3f}")
    cosine = results["int8_vs_fp32_cosine"]
    print(f"int8 vs fp32 cosine per chunk: mean {cosine['mean']:.4f}, min {cosine['min']:.4f}")
    embed = results["query_embedding_ms"]
    print(f"query embedding (int8): p50 {embed['p50_ms']:.1f} ms, p95 {embed['p95_ms']:.1f} ms")
    print("\nStore query latency, k=10, one query at a time (synthetic vectors)")
    print(f"{'store':30} {'rows':>7} {'build s':>8} {'p50 ms':>7} {'p95 ms':>7} {'recall@10':>9}")
    for row in results["store_latency"]:
        if "skipped" in row:
            print(f"{row['store']:30} skipped: {row['skipped']}")
            continue
        print(
            f"{row['store']:30} {row['rows']:7d} {row['build_s']:8.1f} {row['p50_ms']:7.2f} "
            f"{row['p95_ms']:7.2f} {row['recall_at_10_vs_exact']:9.3f}"
        )


if __name__ == "__main__":
    main()
