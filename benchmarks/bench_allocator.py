"""Does the malloc change what evaluation computes on CPU, or how fast?

    .venv/bin/python benchmarks/bench_allocator.py --state /tmp/run/in_process/var

The training process runs on tcmalloc or jemalloc where installed (`training.allocator`;
`benchmarks/bench_training_memory.py` measures training). This measures the other half of a
run's model work, each allocator in a fresh process (`LD_PRELOAD`, as the training process
restarts itself): the state's tuned adapter, merged and cast as evaluation casts it
(`evaluation.generation`), measures perplexity on the first `evaluation.max_eval_rows`
validation conversations of the state's `sft_dataset`, then answers the 42 dev fact questions
(`data/sample/factual/dev_questions.jsonl`, not a reported set) with retrieved context and
context-aware decoding, as `golden_predictions` answers. Reports seconds, peak RSS, and whether
every allocator gave the same perplexity and the same answers (it must). Prints a table and
writes JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench_reading_python_reference import tuned_adapter

from llm_assets.storage import write_json_atomically

ROOT = Path(__file__).resolve().parents[1]
ALLOCATORS = ("system", "tcmalloc", "jemalloc")


def measure(state: Path, profile_path: Path, dev: Path) -> dict[str, Any]:
    """In the allocator's own process: perplexity, then answers, as evaluation computes them."""
    import datasets

    from llm_assets.allocator import allocator_in_use
    from llm_assets.datasets.chat_template import load_chat_tokenizer
    from llm_assets.evaluation.facts import read_fact_questions
    from llm_assets.evaluation.generation import (
        ModelUnderTest,
        ReferenceScoring,
        closed_book_texts,
        generate_answers,
        in_answering_precision,
        load_model,
        prompt_texts,
    )
    from llm_assets.evaluation.grounding import ground_prompts
    from llm_assets.rag.retrieval import open_retriever, read_manifest
    from llm_assets.settings import load_profile

    profile = load_profile(profile_path)
    evaluation = profile.evaluation
    adapter, context = tuned_adapter(state, profile)
    tokenizer = load_chat_tokenizer(adapter.path)
    retriever = open_retriever(read_manifest(state / "assets" / "rag_index.json"))
    questions = read_fact_questions(dev)
    conversations = [[{"role": "user", "content": q}] for q in questions["instruction"]]
    grounded = ground_prompts(
        conversations, retriever.retrieve_many, context, profile.datasets.system_prompt
    )
    prompts = prompt_texts(tokenizer, grounded.conversations)
    twins = closed_book_texts(tokenizer, grounded.closed_book)
    validation = [
        [dict(m) for m in conversation]
        for conversation in list(
            datasets.load_from_disk(str(state / "assets" / "sft_dataset.hfds"))["validation"][
                "messages"
            ]
        )[: evaluation.max_eval_rows]
    ]
    scoring = ReferenceScoring(
        {"validation": validation}, profile.datasets.max_length, evaluation.generation.batch_size
    )

    started = time.perf_counter()
    loaded = in_answering_precision(
        load_model(ModelUnderTest.from_adapter_manifest("tuned", adapter)), evaluation.generation
    )
    load_seconds = time.perf_counter() - started
    started = time.perf_counter()
    scored = scoring.score(loaded, tokenizer)["validation"]
    perplexity_seconds = time.perf_counter() - started
    generated = generate_answers(
        loaded, tokenizer, prompts, evaluation.generation, "tuned", closed_book=twins
    )
    return {
        "allocator": allocator_in_use(),
        "load_seconds": round(load_seconds, 1),
        "perplexity_seconds": round(perplexity_seconds, 1),
        "answer_seconds": round(generated.seconds, 1),
        "answer_tokens_per_second": round(generated.tokens_per_second, 1),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "validation_perplexity": scored.perplexity,
        "answers_sha256": hashlib.sha256(json.dumps(generated.answers).encode()).hexdigest(),
        "validation_conversations": len(validation),
        "questions": len(prompts),
    }


def main() -> None:
    from llm_assets.allocator import AllocatorUnavailable, allocator_library

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", type=Path, default=ROOT / "conf" / "smollm2.yaml")
    parser.add_argument("--state", type=Path, required=True, help="a state with qlora_adapter")
    parser.add_argument(
        "--dev", type=Path, default=ROOT / "data/sample/factual/dev_questions.jsonl"
    )
    parser.add_argument("--allocators", nargs="+", default=list(ALLOCATORS), choices=ALLOCATORS)
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks/results/bench_allocator.json"
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.state, args.profile, args.dev)))
        return

    rows: list[dict[str, Any]] = []
    for name in args.allocators:
        try:
            _, library = allocator_library(name)
        except AllocatorUnavailable as error:
            print(f"{name}: skipped ({error})")
            continue
        environment = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
        if library:
            environment["LD_PRELOAD"] = library
        command = [sys.executable, __file__, "--child", "--state", str(args.state)]
        command += ["--profile", str(args.profile), "--dev", str(args.dev)]
        done = subprocess.run(command, capture_output=True, text=True, env=environment)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"{name} failed")
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        if measured["allocator"] != name:
            raise SystemExit(f"{name}: the process ran on {measured['allocator']}")
        rows.append(measured)
        print(f"{name}: {measured}", flush=True)

    first = rows[0]
    print(
        f"\n{first['questions']} dev fact questions answered (retrieval, context-aware), "
        f"perplexity on {first['validation_conversations']} validation conversations, "
        f"{os.cpu_count()} cores"
    )
    print("| allocator | perplexity s | answers s | vs system | peak RSS MiB | same results |")
    print("|---|---:|---:|---:|---:|---|")
    for row in rows:
        row["same_results_as_first"] = (
            row["answers_sha256"] == first["answers_sha256"]
            and row["validation_perplexity"] == first["validation_perplexity"]
        )
        row["speed_up"] = round(
            (first["perplexity_seconds"] + first["answer_seconds"])
            / (row["perplexity_seconds"] + row["answer_seconds"]),
            2,
        )
        print(
            f"| {row['allocator']} | {row['perplexity_seconds']:.1f} | "
            f"{row['answer_seconds']:.1f} | {row['speed_up']:.2f}x | {row['peak_rss_mib']:,.0f} | "
            f"{'yes' if row['same_results_as_first'] else 'NO'} |"
        )
    write_json_atomically(
        args.output,
        {
            "command": shlex.join(["python", "benchmarks/bench_allocator.py", *sys.argv[1:]]),
            "cores": os.cpu_count(),
            "results": rows,
        },
    )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
