"""Does the tuned model read retrieved context better than its base, on documents it never saw?

    .venv/bin/python benchmarks/bench_reading_python_reference.py --state /tmp/run/in_process/var

The default run trains on the sample product's documentation, and its golden set and factual
questions come from the same data. This asks instead the 40 questions about the Python
language reference (`benchmarks/data/python_reference_facts.jsonl`, written by hand from
CPython's own `pydoc_data.topics`, a corpus this project did not write and never trains on),
with context retrieved from that reference as `bench_rag_python_reference.py` indexes it, in
the format and with the context-aware decoding evaluation and serving use. The tuned adapter
of a materialized state and its base answer each question with that context and closed-book;
an answer counts when it states the fact. The guardrails are left out: the scope guard would
rightly decline every question about another product, and what is measured here is reading.
Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_rag_python_reference import QUESTIONS, reference_index

from llm_assets.storage import write_json_atomically

ROOT = Path(__file__).resolve().parents[1]


def sign_test(wins: int, losses: int) -> float:
    """Exact two-sided binomial test of `wins` against `losses` at even odds."""
    from math import comb

    n = wins + losses
    if n == 0:
        return 1.0
    tail = sum(comb(n, i) for i in range(min(wins, losses) + 1)) / 2**n
    return min(1.0, 2 * tail)


def stated_by_one_only(first: list[str], second: list[str], facts: list[Any]) -> tuple[int, int]:
    """Paired: how many questions `first`'s answer states the fact of and `second`'s does not,
    and the other way round."""
    from llm_assets.evaluation.facts import facts_stated

    by_first = [facts_stated(a, f) for a, f in zip(first, facts, strict=True)]
    by_second = [facts_stated(b, f) for b, f in zip(second, facts, strict=True)]
    pairs = list(zip(by_first, by_second, strict=True))
    return sum(a and not b for a, b in pairs), sum(b and not a for a, b in pairs)


def tuned_adapter(state: Path, profile: Any) -> tuple[Any, Any]:
    """The `qlora_adapter` manifest of a materialized state and the context format it was
    trained with (the profile's serving one for an adapter trained without retrieval)."""
    from llm_assets.contracts import Adapter
    from llm_assets.rag.context import ContextFormat, read_context_format

    adapter = Adapter.model_validate_json(
        (state / "assets" / "qlora_adapter.json").read_text(encoding="utf-8")
    )
    context = read_context_format(adapter.path) or ContextFormat(
        profile.serving.rag_k, profile.serving.rag_max_chars
    )
    return adapter, context


def main() -> None:
    from llm_assets.datasets.chat_template import load_chat_tokenizer
    from llm_assets.evaluation.facts import facts_stated, read_fact_questions
    from llm_assets.evaluation.generation import (
        ModelUnderTest,
        closed_book_texts,
        prompt_texts,
        transformers_answers,
    )
    from llm_assets.evaluation.grounding import ground_prompts, groundedness
    from llm_assets.settings import load_profile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", type=Path, default=ROOT / "conf" / "smollm2.yaml")
    parser.add_argument("--state", type=Path, required=True, help="a state with qlora_adapter")
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "benchmarks/results/bench_reading_python_reference.json",
    )
    args = parser.parse_args()

    profile = load_profile(args.profile)
    adapter, context = tuned_adapter(args.state, profile)
    questions = read_fact_questions(args.questions)
    asked = questions["instruction"].tolist()
    facts = questions["facts"].tolist()
    index = reference_index(profile.rag, Path(tempfile.mkdtemp(prefix="bench_reading-")))
    retriever = index.retriever(profile.rag.search, profile.rag)
    conversations = [[{"role": "user", "content": question}] for question in asked]
    system_prompt = profile.datasets.system_prompt
    grounded = ground_prompts(conversations, retriever.retrieve_many, context, system_prompt)
    closed = ground_prompts(conversations, None, context, system_prompt)
    in_context = sum(
        facts_stated(text, fact) for text, fact in zip(grounded.contexts, facts, strict=True)
    )

    tokenizer = load_chat_tokenizer(adapter.path)
    models = {
        "tuned": ModelUnderTest.from_adapter_manifest("tuned", adapter),
        "base": ModelUnderTest("base", adapter.base_model_path),
    }
    rows: list[dict[str, Any]] = []
    answers: dict[str, list[str]] = {}
    for label, model in models.items():
        for mode, prompts in (("retrieval", grounded), ("closed-book", closed)):
            started = time.perf_counter()
            twins = (
                {label: closed_book_texts(tokenizer, prompts.closed_book)}
                if mode == "retrieval"
                else None
            )
            texts = transformers_answers(
                model,
                tokenizer,
                {label: prompt_texts(tokenizer, prompts.conversations)},
                profile.evaluation.generation,
                closed_book=twins,
            )[label].answers
            seconds = time.perf_counter() - started
            stated = [facts_stated(a, f) for a, f in zip(texts, facts, strict=True)]
            grounded_share = [
                groundedness(a, [question, c])
                for a, question, c in zip(texts, asked, prompts.contexts, strict=True)
            ]
            rows.append(
                {
                    "model": label,
                    "mode": mode,
                    "stated": sum(stated),
                    "of": len(texts),
                    "groundedness": round(sum(grounded_share) / len(grounded_share), 3),
                    "seconds": round(seconds, 1),
                }
            )
            answers[f"{label}/{mode}"] = texts
            print(f"{label:<6} {mode:<11} stated {sum(stated):>2}/{len(texts)}  {seconds:.0f} s")

    # Paired: the questions one model states and the other does not, and the exact two-sided
    # sign test on them (is the split further from even than chance makes it?).
    tuned_only, base_only = stated_by_one_only(
        answers["tuned/retrieval"], answers["base/retrieval"], facts
    )
    sign_p = sign_test(tuned_only, base_only)
    print(
        f"\nPython reference, {len(questions)} questions; the fact was in the retrieved context "
        f"of {in_context} ({profile.rag.search} search, k {context.k}, {context.max_chars} chars)"
    )
    print(f"{'model':<6} {'mode':<11} {'stated':>7} {'groundedness':>12}")
    for row in rows:
        print(
            f"{row['model']:<6} {row['mode']:<11} {row['stated']:>3}/{row['of']:<3} "
            f"{row['groundedness']:>12.3f}"
        )
    print(
        f"with retrieval, stated by tuned only: {tuned_only}, by base only: {base_only} "
        f"(sign test p = {sign_p:.2f})"
    )
    result = {
        "command": "python benchmarks/bench_reading_python_reference.py "
        f"--state {args.state} --profile {args.profile}",
        "adapter": adapter.path,
        "context": {"k": context.k, "max_chars": context.max_chars, "search": profile.rag.search},
        "fact_in_context": in_context,
        "results": rows,
        "retrieval_tuned_only": tuned_only,
        "retrieval_base_only": base_only,
        "sign_test_p": round(sign_p, 4),
        "answers": [
            {"id": pair_id, "facts": fact, **{key: a[i] for key, a in answers.items()}}
            for i, (pair_id, fact) in enumerate(zip(questions["pair_id"], facts, strict=True))
        ],
    }
    write_json_atomically(args.output, result)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
