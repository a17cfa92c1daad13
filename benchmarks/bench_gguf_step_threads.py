"""How many threads should llama.cpp take inside a pipeline step?

    .venv/bin/python benchmarks/bench_gguf_step_threads.py --state /tmp/run/in_process/var

`quantized_export` re-measures each GGUF export through llama.cpp (`measure_gguf_export`:
answer-token perplexity and greedy golden answers on `export.measure_rows` golden
conversations). A server shares its cores with its request threads and gives llama.cpp half of
them; a step has its cores to itself, so it gives llama.cpp the threads torch computes with
(`llama_cpp_engine.step_threads`). This measures the same export of a materialized state both
ways: torch's thread count is set to each of `--threads` in turn, then the step's own
measurement runs. Perplexity and answers must not depend on the thread count; the seconds do.
Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from llm_assets.storage import write_json_atomically

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    import pandas as pd
    import torch

    from llm_assets.evaluation.metrics import load_metric
    from llm_assets.export.gguf import measure_gguf_export
    from llm_assets.export.quantized_export_run import golden_conversations
    from llm_assets.settings import load_profile

    cores = os.cpu_count() or 1
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", type=Path, default=ROOT / "conf" / "smollm2.yaml")
    parser.add_argument("--state", type=Path, required=True, help="a state with quantized_export")
    parser.add_argument("--format", default="gguf-q4_k_m", help="which GGUF export to measure")
    parser.add_argument(
        "--threads", type=int, nargs="+", default=sorted({max(1, cores // 2), cores})
    )
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks/results/bench_gguf_step_threads.json"
    )
    args = parser.parse_args()

    profile = load_profile(args.profile)
    exports = pd.read_json(args.state / "assets" / "quantized_export.json", typ="series")
    export_dir = next(Path(e["path"]) for e in exports["exports"] if e["format"] == args.format)
    golden = pd.read_parquet(args.state / "assets" / "golden_set.parquet")
    conversations = golden_conversations(golden, profile.export.measure_rows)
    rouge = load_metric("rouge", Path(tempfile.mkdtemp(prefix="bench_gguf_threads-")))

    def golden_rouge_l(answers: list[str], references: list[str]) -> float:
        return float(rouge.compute(predictions=answers, references=references)["rougeL"])

    rows: list[dict[str, Any]] = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        started = time.perf_counter()
        measured = measure_gguf_export(
            export_dir,
            args.format,
            conversations,
            profile.datasets.max_length,
            profile.evaluation.generation,
            golden_rouge_l,
        )
        seconds = time.perf_counter() - started
        rows.append(
            {
                "threads": threads,
                "seconds": round(seconds, 1),
                "perplexity": round(measured.perplexity, 4),
                "golden_rouge_l": round(measured.golden_rouge_l, 4),
                "tokens_per_second": round(measured.tokens_per_second, 1),
            }
        )
        print(f"{threads} threads: {seconds:.0f} s")

    slowest = max(r["seconds"] for r in rows)
    print(f"\n{args.format}, {len(conversations)} golden conversations, {cores} cores")
    print("| threads | seconds | speed-up | perplexity | golden ROUGE-L | answer tokens/s |")
    print("|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['threads']} | {r['seconds']:.1f} | {slowest / r['seconds']:.2f}x "
            f"| {r['perplexity']:.4f} | {r['golden_rouge_l']:.4f} | {r['tokens_per_second']:.1f} |"
        )
    result = {
        "command": shlex.join(["python", "benchmarks/bench_gguf_step_threads.py", *sys.argv[1:]]),
        "export": str(export_dir),
        "format": args.format,
        "conversations": len(conversations),
        "cores": cores,
        "results": rows,
    }
    write_json_atomically(args.output, result)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
