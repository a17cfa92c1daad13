"""Peak memory and step time of the default profile's training step on the real model and rows,
for the memory settings a profile can change (gradient checkpointing, LoRA dropout), each in a
fresh process (peak RSS is per process); the rest of `conf/smollm2.yaml`'s training settings
as they are.

    .venv/bin/python benchmarks/bench_training_memory.py --state var      # after `make run`
    .venv/bin/python benchmarks/bench_training_memory.py --state /tmp/smol/state/in_process/var

Reads `base_model`, `chat_template` and `sft_dataset` from the state folder's asset store,
trains `--steps` optimizer steps of `conf/smollm2.yaml`'s training settings (through the same
`build_sft_trainer` as `qlora_adapter`) and prints a table; writes
benchmarks/results/bench_training_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "dropout 0.05, all activations kept": {"gradient_checkpointing": False, "lora_dropout": 0.05},
    "gradient checkpointing": {"gradient_checkpointing": True, "lora_dropout": 0.05},
    "LoRA dropout 0": {"gradient_checkpointing": False, "lora_dropout": 0.0},
    "both (conf/smollm2.yaml)": {"gradient_checkpointing": True, "lora_dropout": 0.0},
    # The same 8 rows per optimizer step in one forward/backward instead of two.
    "both, micro-batch 8 x 1": {
        "gradient_checkpointing": True,
        "lora_dropout": 0.0,
        "per_device_train_batch_size": 8,
        "gradient_accumulation_steps": 1,
    },
}


def one_variant(state: Path, profile_path: Path, updates: dict[str, object], steps: int) -> dict:
    """Runs in its own process: build the trainer as qlora_adapter does, train `steps`."""
    import resource
    import tempfile
    import threading

    import psutil
    from datasets import load_from_disk

    from llm_assets.datasets.chat_template import load_chat_tokenizer
    from llm_assets.settings import load_profile
    from llm_assets.training.sft import build_sft_trainer, sft_config_from

    assets = state / "assets"
    base = json.loads((assets / "base_model.json").read_text())["path"]
    template = json.loads((assets / "chat_template.json").read_text())["template"]
    dataset = load_from_disk(str((assets / "sft_dataset.hfds").resolve()))
    profile = load_profile(profile_path)
    config = profile.training.model_copy(update=updates)
    tokenizer = load_chat_tokenizer(base, chat_template=template)
    rows = steps * config.per_device_train_batch_size * config.gradient_accumulation_steps
    train = dataset["train"].select(range(min(len(dataset["train"]), rows)))
    samples: list[float] = []
    running = True

    def sample() -> None:
        process = psutil.Process()
        while running:
            samples.append(process.memory_info().rss / 2**20)
            time.sleep(0.2)

    with tempfile.TemporaryDirectory() as output:
        args = sft_config_from(
            config,
            Path(output),
            profile.datasets.max_length,
            overrides={"max_steps": steps, "eval_strategy": "no", "save_strategy": "no"},
        )
        trainer = build_sft_trainer(base, tokenizer, config, args, train)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        threading.Thread(target=sample, daemon=True).start()
        started = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - started
        running = False
    return {
        "steps": steps,
        "rows_per_step": config.per_device_train_batch_size * config.gradient_accumulation_steps,
        "seconds_per_step": round(seconds / steps, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "median_rss_mib": round(sorted(samples)[len(samples) // 2], 1) if samples else None,
        "rss_after_model_load_mib": round(before, 1),
        "train_loss": round(float(result.training_loss), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--state", type=Path, required=True, help="a materialized state folder")
    parser.add_argument("--profile", type=Path, default=ROOT / "conf" / "smollm2.yaml")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks/results/bench_training_memory.json"
    )
    parser.add_argument("--variant", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant is not None:
        measured = one_variant(args.state, args.profile, VARIANTS[args.variant], args.steps)
        print(json.dumps(measured))
        return

    results = []
    for name, updates in VARIANTS.items():
        command = [sys.executable, __file__, "--state", str(args.state), "--variant", name]
        command += ["--profile", str(args.profile), "--steps", str(args.steps)]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"variant {name!r} failed")
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        results.append({"variant": name, "settings": updates, **measured})
        print(f"{name}: {measured}", flush=True)

    reference = results[0]
    header = f"{'variant':<36} {'s/step':>7} {'peak RSS MiB':>13} {'median MiB':>11}"
    print(f"\n{header} {'peak vs first':>14}")
    for row in results:
        ratio = row["peak_rss_mib"] / reference["peak_rss_mib"]
        print(
            f"{row['variant']:<36} {row['seconds_per_step']:>7.1f} {row['peak_rss_mib']:>13.0f} "
            f"{row['median_rss_mib'] or 0:>11.0f} {ratio:>13.2f}x"
        )
    args.output.write_text(
        json.dumps(
            {
                "command": "python benchmarks/bench_training_memory.py --state <state>/var",
                "profile": str(args.profile.relative_to(ROOT)),
                "machine": {
                    "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "load_average_1m_at_end": round(os.getloadavg()[0], 2),
                },
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
