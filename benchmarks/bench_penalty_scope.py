"""Repetition penalty over the whole sequence (transformers' `generate(repetition_penalty=)`)
against the answer's own tokens only (what every engine here does), on a dev set.

    .venv/bin/python benchmarks/bench_penalty_scope.py --state /tmp/run/var

Dev set: the `sft_dataset` validation rows of a materialized state whose retrieved context holds
the oracle chunk (project-generated rows, never the golden set or the held-out factual questions,
so nothing reported elsewhere is tuned on). The tuned adapter of that state answers each prompt
greedily with both penalty scopes, at the profile's penalty and `max_new_tokens`; ROUGE-L against
the reference answer and groundedness (the share of the answer's content terms found in the
context) are reported. Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def answer(
    model: Any, tokenizer: Any, prompts: list[str], penalty: float, scope: str, config: Any
) -> list[str]:
    import torch

    from llm_assets.evaluation.decoding import until_eos
    from llm_assets.evaluation.generation import answer_repetition_penalty

    answers = []
    for start in range(0, len(prompts), config.batch_size):
        batch = tokenizer(
            prompts[start : start + config.batch_size],
            return_tensors="pt",
            padding=True,
            add_special_tokens=False,
        )
        width = batch["input_ids"].shape[1]
        penalty_options: dict[str, Any] = (
            {"repetition_penalty": penalty}
            if scope == "sequence"
            else {
                "repetition_penalty": 1.0,
                "logits_processor": answer_repetition_penalty(penalty, width),
            }
        )
        with torch.no_grad():
            output = model.generate(
                **batch,
                max_new_tokens=config.max_new_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                **penalty_options,
            )
        for generated in output[:, width:].tolist():
            produced = until_eos(generated, tokenizer.eos_token_id, tokenizer.pad_token_id)
            answers.append(tokenizer.decode(produced, skip_special_tokens=True).strip())
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state", type=Path, required=True, help="a state's var/ folder")
    parser.add_argument("--rows", type=int, default=32, help="dev rows at most")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks/results/bench_penalty_scope.json"
    )
    args = parser.parse_args()

    import datasets
    import torch
    from rouge_score import rouge_scorer

    from llm_assets.datasets.chat_template import load_chat_tokenizer
    from llm_assets.evaluation.generation import ModelUnderTest, load_model, prompt_texts
    from llm_assets.evaluation.grounding import groundedness
    from llm_assets.settings import GenerationConfig
    from llm_assets.storage import write_json_atomically

    adapter = json.loads((args.state / "assets/qlora_adapter.json").read_text())
    validation = datasets.load_from_disk(str(args.state / "assets/sft_dataset.hfds"))["validation"]
    rows = [row for row in validation if row["context_has_oracle"]][: args.rows]
    tokenizer = load_chat_tokenizer(adapter["path"])
    tokenizer.padding_side = "left"
    model = load_model(ModelUnderTest.from_adapter_manifest("tuned", adapter))
    config = GenerationConfig(batch_size=16)
    prompts = prompt_texts(tokenizer, [row["messages"][:-1] for row in rows])
    references = [row["messages"][-1]["content"] for row in rows]
    contexts = [
        "\n".join(m["content"] for m in row["messages"][:-1] if m["role"] == "system")
        for row in rows
    ]
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    torch.manual_seed(0)
    results = []
    for scope in ("sequence", "answer"):
        started = time.perf_counter()
        answers = answer(model, tokenizer, prompts, config.repetition_penalty, scope, config)
        results.append(
            {
                "penalty_over": scope,
                "rouge_l": sum(
                    scorer.score(ref, text)["rougeL"].fmeasure
                    for ref, text in zip(references, answers, strict=True)
                )
                / len(rows),
                "groundedness": sum(
                    groundedness(text, [context])
                    for text, context in zip(answers, contexts, strict=True)
                )
                / len(rows),
                "seconds": time.perf_counter() - started,
                "first_answer": answers[0],
            }
        )
    print(
        f"{len(rows)} validation rows with the oracle chunk in context; penalty "
        f"{config.repetition_penalty}, at most {config.max_new_tokens} new tokens, greedy"
    )
    print("| penalty over | ROUGE-L | groundedness | s |\n|---|---|---|---|")
    for row in results:
        print(
            f"| {row['penalty_over']} | {row['rouge_l']:.4f} | {row['groundedness']:.3f} "
            f"| {row['seconds']:.0f} |"
        )
    write_json_atomically(
        args.output,
        {
            "rows": len(rows),
            "adapter": adapter["path"],
            "repetition_penalty": config.repetition_penalty,
            "max_new_tokens": config.max_new_tokens,
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "results": results,
        },
    )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
