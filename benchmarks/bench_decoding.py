"""How long evaluation's transformers decoding and perplexity take, against transformers'
`generate`, on what `golden_predictions` answers.

    .venv/bin/python benchmarks/bench_decoding.py --state /tmp/run/in_process/var

The tuned adapter of a materialized state, loaded as evaluation loads it (LoRA merged, cast to
bf16 where the profile says so), answers the state's golden prompts closed-book and with
retrieved context (context-aware decoding, as the profile asks), and scores its golden
perplexity, four ways on the same load, in the same process, after an untimed warm-up batch
of each:

- `generate`, with the vocabulary head reading a strided slice of the hidden states (how
  evaluation decoded and scored before);
- `generate`, with the head reading a contiguous copy (`decoding.contiguous_head_input`);
- `decoding.decode_batch` on transformers' key/value cache (which concatenates every layer's
  cache at each step): the contiguous head, and rows whose answer ended leave the batch;
- `decoding.decode_batch` as evaluation runs it: the same, on a cache that writes each step in
  place (`kv_cache.preallocated_cache`).

Every way must give the same answers (counted per prompt against the first). Prints a table
and writes JSON.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

from bench_reading_python_reference import tuned_adapter

from llm_assets.storage import write_json_atomically

ROOT = Path(__file__).resolve().parents[1]
STRIDED = "generate, head on a strided slice (before)"
CONTIGUOUS = "generate, contiguous head input"
DROPPING = "rows leave the batch, contiguous head, concatenating cache"
IN_PLACE = "rows leave the batch, contiguous head, cache written in place (now)"
# What the ways were called in earlier result files' commands.
EARLIER_NAMES = {"rows leave the batch, contiguous head (now)": DROPPING}


def main() -> None:
    import pandas as pd

    from llm_assets.datasets.chat_template import load_chat_tokenizer
    from llm_assets.evaluation.decoding import decode_batch, decode_with_generate
    from llm_assets.evaluation.generation import (
        ModelUnderTest,
        closed_book_texts,
        generate_answers,
        in_answering_precision,
        load_model,
        prompt_texts,
    )
    from llm_assets.evaluation.grounding import ground_prompts
    from llm_assets.evaluation.perplexity import perplexity
    from llm_assets.evaluation.predictions import golden_prompts, golden_rows
    from llm_assets.rag.retrieval import open_retriever, read_manifest
    from llm_assets.settings import load_profile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", type=Path, default=ROOT / "conf" / "smollm2.yaml")
    parser.add_argument("--state", type=Path, required=True, help="a state with qlora_adapter")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks/results/bench_decoding.json"
    )
    parser.add_argument(
        "--ways",
        nargs="+",
        type=lambda name: EARLIER_NAMES.get(name, name),
        choices=[STRIDED, CONTIGUOUS, DROPPING, IN_PLACE],
        default=[STRIDED, CONTIGUOUS, DROPPING, IN_PLACE],
        help="which ways to measure (the first is the reference of the answers)",
    )
    parser.add_argument(
        "--batch-sizes",
        type=int,
        nargs="*",
        default=[],
        help="also answer with decode_batch at these batch sizes (the answers are compared "
        "with the profile's batch size: bf16 sums may round differently in other batches)",
    )
    args = parser.parse_args()
    if args.batch_sizes and IN_PLACE not in args.ways:
        parser.error(f"--batch-sizes compares answers with {IN_PLACE!r}: keep it in --ways")

    profile = load_profile(args.profile)
    generation = profile.evaluation.generation
    adapter, context = tuned_adapter(args.state, profile)
    golden = pd.read_parquet(args.state / "assets" / "golden_set.parquet").head(
        profile.evaluation.max_eval_rows
    )
    retriever = open_retriever(read_manifest(args.state / "assets" / "rag_index.json"))
    tokenizer = load_chat_tokenizer(adapter.path)
    system_prompt = profile.datasets.system_prompt
    closed = ground_prompts(golden_prompts(golden), None, context, system_prompt)
    grounded = ground_prompts(
        golden_prompts(golden), retriever.retrieve_many, context, system_prompt
    )
    prompt_sets = {
        "closed-book": (prompt_texts(tokenizer, closed.conversations), None),
        "retrieval + context-aware": (
            prompt_texts(tokenizer, grounded.conversations),
            closed_book_texts(tokenizer, grounded.closed_book),
        ),
    }
    conversations = list(golden_rows(golden)["messages"])
    model = in_answering_precision(
        load_model(ModelUnderTest.from_adapter_manifest("tuned", adapter)), generation
    )
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")

    # Untimed: the first batches a process decodes also build its kernels for each shape.
    for prompts, twins in prompt_sets.values():
        head = generation.batch_size
        generate_answers(
            model, tokenizer, prompts[:head], generation, "warm-up", twins and twins[:head]
        )
    perplexity(
        model, tokenizer, conversations[: generation.batch_size], profile.datasets.max_length
    )

    def concatenating_cache(_model: Any, _answer_positions: int) -> None:
        return None

    no_patch: Any = contextlib.nullcontext
    every_way: dict[str, tuple[Any, Any]] = {
        STRIDED: (
            decode_with_generate,
            lambda: mock.patch(
                "llm_assets.evaluation.decoding.contiguous_head_input",
                lambda _model: contextlib.nullcontext(),
            ),
        ),
        CONTIGUOUS: (decode_with_generate, no_patch),
        DROPPING: (
            decode_batch,
            lambda: mock.patch(
                "llm_assets.evaluation.kv_cache.preallocated_cache", concatenating_cache
            ),
        ),
        IN_PLACE: (decode_batch, no_patch),
    }
    ways = {way: every_way[way] for way in args.ways}
    first = args.ways[0]
    rows: list[dict[str, Any]] = []
    answers: dict[str, dict[str, list[str]]] = {}
    for way, (decoder, patch) in ways.items():
        answers[way] = {}
        with patch():
            for name, (prompts, twins) in prompt_sets.items():
                generated = generate_answers(
                    model, tokenizer, prompts, generation, way, twins, decode=decoder
                )
                answers[way][name] = generated.answers
                rows.append(answer_row(way, name, generated, answers[first][name]))
                print(f"{way:<45} {name:<27} {generated.seconds:6.1f} s", flush=True)
            started = time.perf_counter()
            scored = perplexity(
                model,
                tokenizer,
                conversations,
                profile.datasets.max_length,
                generation.batch_size,
            )
            took = time.perf_counter() - started
            rows.append(
                {
                    "way": way,
                    "work": "golden perplexity",
                    "seconds": round(took, 1),
                    "perplexity": round(scored.perplexity, 4),
                }
            )
            print(f"{way:<45} {'golden perplexity':<27} {took:6.1f} s", flush=True)

    for batch_size in args.batch_sizes:
        way = f"{IN_PLACE}, batches of {batch_size}"
        resized = generation.model_copy(update={"batch_size": batch_size})
        for name, (prompts, twins) in prompt_sets.items():
            generated = generate_answers(
                model, tokenizer, prompts, resized, way, twins, decode=decode_batch
            )
            rows.append(
                {
                    **answer_row(way, name, generated, answers[IN_PLACE][name]),
                    "compared_with": f"{IN_PLACE}, batches of {generation.batch_size}",
                }
            )
            print(f"{way:<45} {name:<27} {generated.seconds:6.1f} s", flush=True)

    def seconds(way: str) -> float:
        return sum(r["seconds"] for r in rows if r["way"] == way)

    before = seconds(first)
    print(
        f"\ntuned adapter, {len(conversations)} golden prompts, {dtype} weights, "
        f"batches of {generation.batch_size}, up to {generation.max_new_tokens} new tokens, "
        f"{os.cpu_count()} cores"
    )
    print("| way | work | seconds | same answers as before | perplexity |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        same = f"{r['same_answers_as_before']}/{r['of']}" if "of" in r else ""
        print(
            f"| {r['way']} | {r['work']} | {r['seconds']:.1f} | {same} "
            f"| {r.get('perplexity', '')} |"
        )
    totals = {way: round(seconds(way), 1) for way in ways}
    answering = {r["way"]: round(seconds(r["way"]), 1) for r in rows if r["way"] not in ways}
    if answering:
        own = sum(r["seconds"] for r in rows if r["way"] == IN_PLACE and "of" in r)
        for way, total in answering.items():
            print(
                f"| {way} | answers only | {total:.1f} | {own / total:.2f}x of batches of "
                f"{generation.batch_size} | |"
            )
    for way, total in totals.items():
        print(f"| {way} | all of it | {total:.1f} | {before / total:.2f}x of before | |")
    result = {
        "command": "python " + shlex.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "adapter": adapter.path,
        "cores": os.cpu_count(),
        "dtype": dtype,
        "prompts": len(conversations),
        "batch_size": generation.batch_size,
        "max_new_tokens": generation.max_new_tokens,
        "results": rows,
        "total_seconds": totals,
        "answer_seconds_at_other_batch_sizes": answering,
        "speed_up_over_before": {way: round(before / total, 2) for way, total in totals.items()},
    }
    write_json_atomically(args.output, result)
    print(f"wrote {args.output}")


def answer_row(way: str, work: str, generated: Any, reference: list[str]) -> dict[str, Any]:
    """One way's answers to one prompt set: time, tokens, and how many equal `reference`."""
    return {
        "way": way,
        "work": f"answers, {work}",
        "seconds": round(generated.seconds, 1),
        "new_tokens": sum(generated.new_tokens),
        "same_answers_as_before": sum(
            a == b for a, b in zip(generated.answers, reference, strict=True)
        ),
        "of": len(reference),
    }


if __name__ == "__main__":
    main()
