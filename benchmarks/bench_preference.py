"""Preference tuning on real feedback: does KTO / DPO teach SmolLM2 what users said, and at what
cost in golden answers and time?

    .venv/bin/python benchmarks/bench_preference.py             # conf/smollm2.yaml, kto and dpo
    .venv/bin/python benchmarks/bench_preference.py --methods dpo --max-steps 20

The feedback is the shipped fixture `data/sample/feedback/feedback.jsonl`: real answers of
SmolLM2-135M-Instruct judged by hand (see data/sample/README.md), split by exchange into `train`
(what the model is tuned on) and `held_out` (what it is measured on; never trained on, and no
setting here was chosen by looking at it). The start model (the "SFT model" of the pipeline) is
SmolLM2-135M-Instruct itself, the model that wrote the judged answers, so the rejected answers
are its own; `base_model` and `golden_set` are materialized with the profile into a work folder.

Rows are made by `preference_data` with the profile's conversation template and system prompt,
and trained by `train_preference_adapter` with the profile's `preference` and `training`
settings (what `preference_adapter` runs). Measured, against the start model:
- on each held-out pair, the log-probability margin log p(chosen) - log p(rejected) (summed
  over the answer's tokens); the gain is tuned margin - start margin, with a paired bootstrap
  interval;
- golden ROUGE-L (closed-book, greedy, `evaluation.generation`), with a paired bootstrap
  interval of tuned - start;
- seconds per optimizer step on this machine.
Prints a table and writes benchmarks/results/bench_preference.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from llm_assets.storage import atomic_file

ROOT = Path(__file__).resolve().parents[1]
FEEDBACK = ROOT / "data" / "sample" / "feedback" / "feedback.jsonl"


def materialize(profile: Path, work: Path) -> Path:
    """`base_model` and `golden_set` made by the pipeline itself; returns the assets folder."""
    work.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "DAGSTER_HOME": str(work),
        "LLM_ASSETS_STATE_DIR": str(work / "state"),
        "LLM_ASSETS_PROFILE": str(profile),
    }
    command = [sys.executable, "-m", "llm_assets.cli", "materialize", "--select"]
    command += ["key:golden_set or key:base_model"]  # and what they need
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"materializing the inputs failed:\n{done.stderr[-3000:]}")
    return work / "state" / "assets"


def feedback_rows(profile: Any, split: str) -> Any:
    from llm_assets.datasets.preferences import preference_data
    from llm_assets.sources.feedback import Exchange

    rows = [json.loads(line) for line in FEEDBACK.read_text(encoding="utf-8").splitlines()]
    exchanges = [Exchange.from_mapping(row) for row in rows if row["split"] == split]
    return preference_data(
        exchanges,
        profile.feedback.min_rating_kept,
        "2026-10-01",
        profile.datasets.templates.conversation,
        profile.datasets.system_prompt,
    )


def golden_rouge(model: Any, tokenizer: Any, golden: Any, profile: Any, cache: Path) -> list[float]:
    from llm_assets.evaluation.answer_scores import score_answers
    from llm_assets.evaluation.generation import generate_answers, prompt_texts

    conversations = [list(messages[:-1]) for messages in golden["messages"]]
    prompts = prompt_texts(tokenizer, conversations)
    answers = generate_answers(model, tokenizer, prompts, profile.evaluation.generation).answers
    references = [str(messages[-1]["content"]) for messages in golden["messages"]]
    return [float(x) for x in score_answers("model", answers, references, cache).rougeL]


def measure(model: Any, tokenizer: Any, held_out: Any, golden: Any, profile: Any, cache: Path):
    started = time.perf_counter()
    from llm_assets.evaluation.perplexity import pair_margins

    pairs = held_out.to_dict("records")
    margin = pair_margins(model, tokenizer, pairs, profile.datasets.max_length)
    rouge = golden_rouge(model, tokenizer, golden, profile, cache)
    return margin, rouge, time.perf_counter() - started


def train(method: str, base: str, rows: Any, template: str, profile: Any, work: Path) -> Any:
    from datasets import Dataset

    from llm_assets.training.preference import TRAINER_COLUMNS, train_preference_adapter

    columns = TRAINER_COLUMNS[method]
    dataset = Dataset.from_pandas(rows[columns].reset_index(drop=True), preserve_index=False)
    return train_preference_adapter(
        base,
        dataset,
        method,  # type: ignore[arg-type]
        profile.preference.model_copy(update={"method": method}),
        profile.training,
        profile.datasets.max_length,
        work,
        lambda metrics, step: None,
        chat_template=template,
    )


def interval(tuned: list[float], start: list[float], samples: int) -> dict[str, float]:
    from llm_assets.evaluation.bootstrap import paired_bootstrap

    found = paired_bootstrap(tuned, start, samples=samples, confidence=0.95, seed=0)
    return {k: round(v, 4) for k, v in found.as_dict().items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", type=Path, default=ROOT / "conf" / "smollm2.yaml")
    parser.add_argument("--methods", nargs="+", default=["kto", "dpo"], choices=["kto", "dpo"])
    parser.add_argument("--max-steps", type=int, default=None, help="default: the profile's")
    parser.add_argument("--samples", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--work", type=Path, default=None, help="default: a temporary folder")
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks/results/bench_preference.json"
    )
    args = parser.parse_args()

    import pandas as pd
    import torch

    from llm_assets.datasets.chat_template import load_chat_tokenizer, training_chat_template
    from llm_assets.evaluation.generation import ModelUnderTest, load_model
    from llm_assets.settings import load_profile

    profile = load_profile(args.profile)
    if args.max_steps is not None:
        updated = profile.preference.model_copy(update={"max_steps": args.max_steps})
        profile = profile.model_copy(update={"preference": updated})
    work = args.work or Path(tempfile.mkdtemp(prefix="bench_preference-"))
    assets = materialize(args.profile.resolve(), work)
    base = json.loads((assets / "base_model.json").read_text())["path"]
    golden = pd.read_parquet(assets / "golden_set.parquet")
    template, _ = training_chat_template(load_chat_tokenizer(base))
    tokenizer = load_chat_tokenizer(base, template)
    train_rows, held_out = feedback_rows(profile, "train"), feedback_rows(profile, "held_out")
    cache = work / "metrics"
    print(
        f"feedback: train {len(train_rows.unpaired)} KTO rows / {len(train_rows.paired)} pairs, "
        f"held out {len(held_out.paired)} pairs; golden {len(golden)} rows; "
        f"torch threads {torch.get_num_threads()}",
        flush=True,
    )

    start_model = load_model(ModelUnderTest("start", base))
    start_margin, start_rouge, seconds = measure(
        start_model, tokenizer, held_out.paired, golden, profile, cache
    )
    del start_model
    print(f"start model measured in {seconds:.0f} s", flush=True)
    results: list[dict[str, Any]] = []
    for method in args.methods:
        rows = train_rows.unpaired if method == "kto" else train_rows.paired
        trained = train(method, base, rows, template, profile, work / f"train-{method}")
        runtime = next(
            (e["train_runtime"] for e in trained.log_history if "train_runtime" in e),
            trained.seconds,
        )
        tuned_model = load_model(
            ModelUnderTest(method, base, str(trained.output_dir), profile.training.method)
        )
        tuned_margin, tuned_rouge, _ = measure(
            tuned_model, tokenizer, held_out.paired, golden, profile, cache
        )
        del tuned_model
        margin_gain = interval(tuned_margin, start_margin, args.samples)
        rouge_change = interval(tuned_rouge, start_rouge, args.samples)
        results.append(
            {
                "method": method,
                "train_rows": len(rows),
                "steps": trained.global_step,
                "rows_per_step": profile.preference.per_device_train_batch_size
                * profile.preference.gradient_accumulation_steps,
                "seconds_per_step": round(runtime / max(trained.global_step, 1), 2),
                "train_loss": round(trained.train_loss, 4),
                "peak_memory_mib": trained.peak_memory_mib,
                "held_out_pairs": len(start_margin),
                "start_margin_mean": round(sum(start_margin) / len(start_margin), 3),
                "tuned_margin_mean": round(sum(tuned_margin) / len(tuned_margin), 3),
                "margin_gain": margin_gain,
                "pairs_with_larger_margin": sum(
                    t > s for t, s in zip(tuned_margin, start_margin, strict=True)
                ),
                "start_golden_rougeL": round(sum(start_rouge) / len(start_rouge), 4),
                "tuned_golden_rougeL": round(sum(tuned_rouge) / len(tuned_rouge), 4),
                "golden_rougeL_change": rouge_change,
                "margin_gain_above_zero": margin_gain["low"] > 0,
                "golden_rougeL_within_0_01": rouge_change["delta"] >= -0.01,
            }
        )
        print(json.dumps(results[-1]), flush=True)

    header = (
        f"{'method':<6} {'steps':>5} {'s/step':>7} {'margin start':>13} {'tuned':>8} "
        f"{'gain [95% CI]':>24} {'ROUGE-L start':>14} {'tuned':>7} {'change [95% CI]':>26}"
    )
    print(f"\n{header}")
    for row in results:
        gain, change = row["margin_gain"], row["golden_rougeL_change"]
        print(
            f"{row['method']:<6} {row['steps']:>5} {row['seconds_per_step']:>7} "
            f"{row['start_margin_mean']:>13} {row['tuned_margin_mean']:>8} "
            f"{gain['delta']:>+8.3f} [{gain['low']:+.3f}, {gain['high']:+.3f}] "
            f"{row['start_golden_rougeL']:>14} {row['tuned_golden_rougeL']:>7} "
            f"{change['delta']:>+8.4f} [{change['low']:+.4f}, {change['high']:+.4f}]"
        )
    report = {
        "command": "python " + " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "profile": str(args.profile),
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
        "torch_threads": torch.get_num_threads(),
        "preference": profile.preference.model_dump(),
        "training_method": profile.training.method,
        "start_model": "SmolLM2-135M-Instruct (the model that wrote the judged answers)",
        "held_out": "data/sample/feedback/feedback.jsonl split=held_out, DPO pairs",
        "golden": "golden_set of the profile, closed-book, evaluation.generation",
        "results": results,
    }
    with atomic_file(args.output) as temporary:
        temporary.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
