"""How often the retrieved context a prompt carries holds the fact its question asks for.

    .venv/bin/python benchmarks/bench_rag_context.py --state /tmp/run/in_process/var

For every question of a fact file (hand-written from the docs, with the fact's exact words), the
question is searched in a materialized `rag_index` and the top-k chunks rendered into context
exactly as training, evaluation and serving render them (`rag.context.context_text`), then
counted when the rendered text holds the fact. Each setting is measured on the dev questions
(`data/sample/factual/dev_questions.jsonl`, which choose the defaults) and on the held-out
questions (`evaluation.facts_file`, reported, never used to choose):
- search: dense (cosine of the embeddings) or hybrid (and BM25, fused by reciprocal rank);
- cut: how a chunk that does not fit the character budget is cut: its head, or the passage
  that shares most words with the question (`focused_excerpt`);
- the character budget of the context (`datasets.retrieval.max_context_chars`).
It also times retrieval (per query, both searches on the same questions in the same run).
Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path
from typing import Any

from llm_assets.storage import write_json_atomically

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from llm_assets.evaluation.facts import facts_stated, read_fact_questions
    from llm_assets.rag.context import context_text
    from llm_assets.rag.retrieval import open_retriever, read_manifest
    from llm_assets.settings import load_profile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", type=Path, default=ROOT / "conf" / "smollm2.yaml")
    parser.add_argument("--state", type=Path, required=True, help="a state folder with rag_index")
    parser.add_argument(
        "--dev", type=Path, default=ROOT / "data/sample/factual/dev_questions.jsonl"
    )
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--budgets", type=int, nargs="+", default=[800, 1000, 1200])
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks/results/bench_rag_context.json"
    )
    args = parser.parse_args()

    held_out = load_profile(args.profile).facts_path()
    sets = {"dev": read_fact_questions(args.dev)}
    if held_out is not None:
        sets["held-out"] = read_fact_questions(held_out)
    manifest = read_manifest(args.state / "assets" / "rag_index.json")
    rows: list[dict[str, Any]] = []
    timing: dict[str, float] = {}
    for search in ("dense", "hybrid"):
        retriever = open_retriever(manifest.model_copy(update={"search": search}))
        retriever.retrieve_many(["warm-up"], args.k)
        for name, questions in sets.items():
            asked = questions["instruction"].tolist()
            started = time.perf_counter()
            hits = retriever.retrieve_many(asked, args.k)
            timing[f"{search}/{name}"] = (time.perf_counter() - started) / len(asked) * 1000
            facts = questions["facts"].tolist()
            in_chunks = sum(
                any(facts_stated(chunk.text, fact) for chunk in chunks)
                for chunks, fact in zip(hits, facts, strict=True)
            )
            for budget in args.budgets:
                for cut in ("head", "focused"):
                    held = sum(
                        facts_stated(
                            context_text(chunks, budget, q if cut == "focused" else "")[0], f
                        )
                        for chunks, q, f in zip(hits, asked, facts, strict=True)
                    )
                    rows.append(
                        {
                            "questions": name,
                            "search": search,
                            "cut": cut,
                            "max_context_chars": budget,
                            "fact_in_context": held,
                            "fact_in_top_k_chunks": in_chunks,
                            "of": len(asked),
                        }
                    )
    print(f"fact in the rendered context of the top {args.k} chunks ({manifest.chunks} chunks)")
    header = ["questions", "search", "cut", "chars", "in context", "in chunks"]
    print("{:<9} {:<7} {:<8} {:>5} {:>10} {:>9}".format(*header))
    for row in rows:
        print(
            f"{row['questions']:<9} {row['search']:<7} {row['cut']:<8} "
            f"{row['max_context_chars']:>5} {row['fact_in_context']:>6}/{row['of']:<3} "
            f"{row['fact_in_top_k_chunks']:>5}/{row['of']}"
        )
    print("ms per query: " + ", ".join(f"{key} {value:.1f}" for key, value in timing.items()))
    result = {
        "command": "python benchmarks/bench_rag_context.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "budgets")
        + " --budgets "
        + " ".join(map(str, args.budgets)),
        "rag_index": {"chunks": manifest.chunks, "model": manifest.model},
        "machine": {"python": platform.python_version()},
        "results": rows,
        "ms_per_query": {key: round(value, 2) for key, value in timing.items()},
    }
    write_json_atomically(args.output, result)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
