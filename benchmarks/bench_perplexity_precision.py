"""Is perplexity measured on bf16 weights the perplexity of the fp32 weights, and how much sooner?

    .venv/bin/python benchmarks/bench_perplexity_precision.py --state /tmp/run/in_process/var

`evaluation.generation.cpu_bf16_perplexity` lets `golden_predictions` measure the golden and
validation perplexity after the cast to bf16 that answering uses (`cpu_bf16`), on one load per
model. This measures both precisions on what the report shows: the tuned adapter (merged) and
its base, on the state's golden conversations and the first `evaluation.max_eval_rows`
validation conversations of its `sft_dataset`, at the profile's `datasets.max_length`. It reports
each perplexity both ways, the relative difference, and the seconds each took (the load is not
counted). Prints a table and writes JSON.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

from bench_reading_python_reference import tuned_adapter

from llm_assets.storage import write_json_atomically

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    import datasets
    import pandas as pd

    from llm_assets.datasets.chat_template import load_chat_tokenizer
    from llm_assets.evaluation.generation import (
        ModelUnderTest,
        ReferenceScoring,
        in_answering_precision,
        load_model,
    )
    from llm_assets.evaluation.predictions import golden_rows
    from llm_assets.settings import load_profile
    from llm_assets.training.sft import cpu_multiplies_bf16

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", type=Path, default=ROOT / "conf" / "smollm2.yaml")
    parser.add_argument("--state", type=Path, required=True, help="a state with qlora_adapter")
    parser.add_argument(
        "--output",
        type=Path,
        default=ROOT / "benchmarks/results/bench_perplexity_precision.json",
    )
    args = parser.parse_args()

    profile = load_profile(args.profile)
    evaluation = profile.evaluation
    adapter, _ = tuned_adapter(args.state, profile)
    tokenizer = load_chat_tokenizer(adapter.path)
    golden = pd.read_parquet(args.state / "assets" / "golden_set.parquet")
    sft_dataset = datasets.load_from_disk(str(args.state / "assets" / "sft_dataset.hfds"))
    validation = [
        [dict(m) for m in conversation]
        for conversation in list(sft_dataset["validation"]["messages"])[: evaluation.max_eval_rows]
    ]
    scoring = ReferenceScoring(
        {"golden": list(golden_rows(golden)["messages"]), "validation": validation},
        profile.datasets.max_length,
        evaluation.generation.batch_size,
    )
    models = {
        "tuned": ModelUnderTest.from_adapter_manifest("tuned", adapter),
        "base": ModelUnderTest("base", adapter.base_model_path),
    }
    bf16 = evaluation.generation.model_copy(update={"cpu_bf16": "on"})

    rows: list[dict[str, Any]] = []
    for label, model in models.items():
        measured: dict[str, tuple[dict[str, Any], float]] = {}
        for precision in ("fp32", "bf16"):
            loaded = load_model(model)
            if precision == "bf16":
                loaded = in_answering_precision(loaded, bf16)
            started = time.perf_counter()
            scores = scoring.score(loaded, tokenizer)
            measured[precision] = (scores, time.perf_counter() - started)
            del loaded
        for split in scoring.splits:
            fp32_result, bf16_result = measured["fp32"][0][split], measured["bf16"][0][split]
            rows.append(
                {
                    "model": label,
                    "split": split,
                    "conversations": fp32_result.rows,
                    "answer_tokens": fp32_result.tokens,
                    "perplexity_fp32": round(fp32_result.perplexity, 3),
                    "perplexity_bf16": round(bf16_result.perplexity, 3),
                    "difference_percent": round(
                        100 * (bf16_result.perplexity / fp32_result.perplexity - 1), 2
                    ),
                }
            )
        rows[-1]["seconds_fp32"] = round(measured["fp32"][1], 1)
        rows[-1]["seconds_bf16"] = round(measured["bf16"][1], 1)
        print(f"{label}: fp32 {measured['fp32'][1]:.0f} s, bf16 {measured['bf16'][1]:.0f} s")

    seconds_fp32 = sum(r.get("seconds_fp32", 0.0) for r in rows)
    seconds_bf16 = sum(r.get("seconds_bf16", 0.0) for r in rows)
    print(f"\n{os.cpu_count()} cores; native bf16: {cpu_multiplies_bf16()}")
    print("| model | split | conversations | fp32 | bf16 | difference |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['model']} | {r['split']} | {r['conversations']} | {r['perplexity_fp32']:.3f} "
            f"| {r['perplexity_bf16']:.3f} | {r['difference_percent']:+.2f}% |"
        )
    print(
        f"all four: fp32 {seconds_fp32:.0f} s, bf16 {seconds_bf16:.0f} s "
        f"({seconds_fp32 / seconds_bf16:.2f}x)"
    )
    result = {
        "command": shlex.join(
            ["python", "benchmarks/bench_perplexity_precision.py", *sys.argv[1:]]
        ),
        "adapter": adapter.path,
        "cores": os.cpu_count(),
        "native_bf16": cpu_multiplies_bf16(),
        "max_length": profile.datasets.max_length,
        "results": rows,
        "seconds": {
            "fp32": round(seconds_fp32, 1),
            "bf16": round(seconds_bf16, 1),
            "speed_up": round(seconds_fp32 / seconds_bf16, 2),
        },
    }
    write_json_atomically(args.output, result)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
