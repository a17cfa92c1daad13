"""Do answers in bf16 say what fp32 answers say, and how much sooner?

    .venv/bin/python benchmarks/bench_eval_precision.py --state /tmp/run/in_process/var

`evaluation.generation.cpu_bf16` casts each model under test to bf16 after its LoRA merge (and
after its fp32 perplexity) before it answers. Greedy decoding in another precision can pick
another token wherever two are nearly tied, so this measures what the cast changes on questions
that choose nothing reported: the tuned adapter of a materialized state answers, with retrieved
context and context-aware decoding as evaluation asks, once with fp32 weights and once in bf16,

- the 42 dev fact questions (`data/sample/factual/dev_questions.jsonl`) with context from the
  state's `rag_index`, and
- the 40 questions on the Python language reference (`benchmarks/data/python_reference_facts
  .jsonl`), a corpus the project did not write, indexed as `bench_rag_python_reference.py` does.

An answer counts when it states the fact (`evaluation.facts.facts_stated`). Guardrails are left
out: this measures the model. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path
from typing import Any

from bench_rag_python_reference import QUESTIONS as PYTHON_QUESTIONS
from bench_rag_python_reference import reference_index
from bench_reading_python_reference import stated_by_one_only, tuned_adapter

from llm_assets.storage import write_json_atomically

ROOT = Path(__file__).resolve().parents[1]
PRECISIONS = {"fp32": "off", "bf16": "on"}


def main() -> None:
    from llm_assets.datasets.chat_template import load_chat_tokenizer
    from llm_assets.evaluation.facts import facts_stated, read_fact_questions
    from llm_assets.evaluation.generation import (
        ModelUnderTest,
        closed_book_texts,
        prompt_texts,
        transformers_answers,
    )
    from llm_assets.evaluation.grounding import ground_prompts
    from llm_assets.rag.retrieval import open_retriever, read_manifest
    from llm_assets.settings import load_profile
    from llm_assets.training.sft import cpu_multiplies_bf16

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", type=Path, default=ROOT / "conf" / "smollm2.yaml")
    parser.add_argument("--state", type=Path, required=True, help="a state with qlora_adapter")
    parser.add_argument(
        "--dev", type=Path, default=ROOT / "data/sample/factual/dev_questions.jsonl"
    )
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks/results/bench_eval_precision.json"
    )
    args = parser.parse_args()

    profile = load_profile(args.profile)
    adapter, context = tuned_adapter(args.state, profile)
    system_prompt = profile.datasets.system_prompt
    sample_retriever = open_retriever(read_manifest(args.state / "assets" / "rag_index.json"))
    python_index = reference_index(profile.rag, Path(tempfile.mkdtemp(prefix="bench_precision-")))
    python_retriever = python_index.retriever(profile.rag.search, profile.rag)
    question_sets = {
        "dev facts": (read_fact_questions(args.dev), sample_retriever.retrieve_many),
        "python reference": (read_fact_questions(PYTHON_QUESTIONS), python_retriever.retrieve_many),
    }

    tokenizer = load_chat_tokenizer(adapter.path)
    prompts: dict[str, list[str]] = {}
    twins: dict[str, list[str | None]] = {}
    facts: dict[str, list[Any]] = {}
    for name, (questions, search_many) in question_sets.items():
        conversations = [[{"role": "user", "content": q}] for q in questions["instruction"]]
        grounded = ground_prompts(conversations, search_many, context, system_prompt)
        prompts[name] = prompt_texts(tokenizer, grounded.conversations)
        twins[name] = closed_book_texts(tokenizer, grounded.closed_book)
        facts[name] = questions["facts"].tolist()

    tuned = ModelUnderTest.from_adapter_manifest("tuned", adapter)
    answers: dict[str, dict[str, list[str]]] = {}
    rows: list[dict[str, Any]] = []
    for precision, setting in PRECISIONS.items():
        generation = profile.evaluation.generation.model_copy(update={"cpu_bf16": setting})
        generated = transformers_answers(tuned, tokenizer, prompts, generation, closed_book=twins)
        answers[precision] = {name: g.answers for name, g in generated.items()}
        for name, g in generated.items():
            stated = sum(facts_stated(a, f) for a, f in zip(g.answers, facts[name], strict=True))
            rows.append(
                {
                    "precision": precision,
                    "questions": name,
                    "stated": stated,
                    "of": len(g.answers),
                    "seconds": round(g.seconds, 1),
                    "tokens_per_second": round(g.tokens_per_second, 1),
                }
            )
            print(f"{precision} {name:<17} stated {stated:>2}/{len(g.answers)}  {g.seconds:.0f} s")

    def row(precision: str, name: str) -> dict[str, Any]:
        return next(r for r in rows if r["precision"] == precision and r["questions"] == name)

    comparison = []
    for name in question_sets:
        fp32, bf16 = answers["fp32"][name], answers["bf16"][name]
        fp32_only, bf16_only = stated_by_one_only(fp32, bf16, facts[name])
        comparison.append(
            {
                "questions": name,
                "of": len(fp32),
                "stated_fp32": row("fp32", name)["stated"],
                "stated_bf16": row("bf16", name)["stated"],
                "stated_by_fp32_only": fp32_only,
                "stated_by_bf16_only": bf16_only,
                "identical_answers": sum(a == b for a, b in zip(fp32, bf16, strict=True)),
                "speed_up": round(row("fp32", name)["seconds"] / row("bf16", name)["seconds"], 2),
            }
        )

    print(
        f"\ntuned adapter, retrieval + context-aware decoding, {os.cpu_count()} cores; "
        f"native bf16: {cpu_multiplies_bf16()}"
    )
    print(
        "| questions | fp32 stated | bf16 stated | fp32 only | bf16 only | same answer | speed-up |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for c in comparison:
        print(
            f"| {c['questions']} | {c['stated_fp32']}/{c['of']} | {c['stated_bf16']}/{c['of']} "
            f"| {c['stated_by_fp32_only']} | {c['stated_by_bf16_only']} "
            f"| {c['identical_answers']}/{c['of']} | {c['speed_up']:.2f}x |"
        )
    result = {
        "command": f"python benchmarks/bench_eval_precision.py --state {args.state} "
        f"--profile {args.profile}",
        "adapter": adapter.path,
        "cores": os.cpu_count(),
        "native_bf16": cpu_multiplies_bf16(),
        "context": {"k": context.k, "max_chars": context.max_chars, "search": profile.rag.search},
        "results": rows,
        "comparison": comparison,
        "answers": {
            name: [
                {"fp32": a, "bf16": b, "facts": f}
                for a, b, f in zip(
                    answers["fp32"][name], answers["bf16"][name], facts[name], strict=True
                )
            ]
            for name in question_sets
        },
    }
    write_json_atomically(args.output, result)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
