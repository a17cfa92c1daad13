"""Context-aware decoding (`evaluation.generation.context_contrast`) against plain decoding, on a
dev set, with the tuned adapter of a materialized state.

    .venv/bin/python benchmarks/bench_context_contrast.py --state /tmp/run/var
    .venv/bin/python benchmarks/bench_context_contrast.py --state /tmp/run/var --alphas 0 0.5 1

Dev set: the `sft_dataset` validation rows (project-generated, never the golden set or the
held-out factual questions, so nothing reported elsewhere is chosen on it), asked as serving asks
them: the user's question with the `rag_index` chunks retrieved for it in the adapter's context
format, after the training system prompt. Every alpha answers the same prompts greedily through
`generate_answers` (batched as evaluation batches); 0 is plain decoding, the peer each row is
compared with. Reports ROUGE-L against the reference answer, groundedness (the share of the
answer's content terms found in the question or its context) and the time, as a table and JSON.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", type=Path, required=True, help="a state's var/ folder")
    parser.add_argument("--profile", type=Path, default=ROOT / "conf/smollm2.yaml")
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.0, 0.5, 1.0])
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks/results/bench_context_contrast.json"
    )
    args = parser.parse_args()

    import datasets

    from llm_assets.contracts import Adapter, RagIndex
    from llm_assets.datasets.chat_template import load_chat_tokenizer
    from llm_assets.evaluation.generation import (
        ModelUnderTest,
        closed_book_texts,
        generate_answers,
        load_model,
        prompt_texts,
    )
    from llm_assets.evaluation.grounding import ground_prompts, groundedness
    from llm_assets.evaluation.metrics import load_metric
    from llm_assets.rag.context import read_context_format
    from llm_assets.rag.retrieval import open_retriever
    from llm_assets.settings import load_profile
    from llm_assets.storage import write_json_atomically

    profile = load_profile(args.profile)
    assets = args.state / "assets"
    adapter = Adapter.model_validate_json((assets / "qlora_adapter.json").read_text())
    rag_index = RagIndex.model_validate_json((assets / "rag_index.json").read_text())
    context = read_context_format(adapter.path)
    if context is None:
        raise SystemExit(f"{adapter.path} was trained closed-book: nothing to contrast")
    validation = datasets.load_from_disk(str(assets / "sft_dataset.hfds"))["validation"]
    questions = [[m for m in row["messages"] if m["role"] == "user"] for row in validation]
    references = [row["messages"][-1]["content"] for row in validation]
    grounded = ground_prompts(
        questions,
        open_retriever(rag_index).retrieve_many,
        context,
        profile.datasets.system_prompt,
    )
    tokenizer = load_chat_tokenizer(adapter.path)
    prompts = prompt_texts(tokenizer, grounded.conversations)
    twins = closed_book_texts(tokenizer, grounded.closed_book)
    model = load_model(ModelUnderTest.from_adapter_manifest("tuned", adapter))
    rouge = load_metric("rouge", args.state / "cache" / "metrics")
    generation = profile.evaluation.generation
    results = []
    for alpha in args.alphas:
        config = generation.model_copy(update={"context_contrast": alpha})
        started = time.perf_counter()
        answers = generate_answers(model, tokenizer, prompts, config, closed_book=twins).answers
        seconds = time.perf_counter() - started
        scores = rouge.compute(predictions=answers, references=references)
        results.append(
            {
                "alpha": alpha,
                "rouge_l": round(float(scores["rougeL"]), 4),
                "groundedness": round(
                    sum(
                        groundedness(answer, [question[-1]["content"], text])
                        for answer, question, text in zip(
                            answers, questions, grounded.contexts, strict=True
                        )
                    )
                    / len(answers),
                    4,
                ),
                "seconds": round(seconds, 1),
                "first_answers": answers[:3],
            }
        )
    plain = next((row for row in results if row["alpha"] == 0), None)
    print(
        f"{len(prompts)} validation rows asked with retrieval (k={context.k}, "
        f"{context.max_chars} characters); greedy, at most {generation.max_new_tokens} tokens"
    )
    print("| alpha | ROUGE-L | groundedness | s | time vs plain |\n|---|---:|---:|---:|---:|")
    for row in results:
        ratio = f"{row['seconds'] / plain['seconds']:.2f}x" if plain else "-"
        print(
            f"| {row['alpha']} | {row['rouge_l']:.4f} | {row['groundedness']:.3f} "
            f"| {row['seconds']:.0f} | {ratio} |"
        )
    write_json_atomically(
        args.output,
        {
            "command": " ".join(["python", "benchmarks/bench_context_contrast.py", *sys.argv[1:]]),
            "rows": len(prompts),
            "adapter": adapter.path,
            "context": {"k": context.k, "max_chars": context.max_chars},
            "max_new_tokens": generation.max_new_tokens,
            "batch_size": generation.batch_size,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "results": results,
        },
    )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
