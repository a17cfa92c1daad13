"""Peak memory, step time and tokens/s of the default profile's training step on the real model
and rows, against trl's own SFTTrainer on the same rows and settings, each variant in a fresh
process (peak RSS is per process).

    .venv/bin/python benchmarks/bench_training_memory.py --state var      # after `make run`
    .venv/bin/python benchmarks/bench_training_memory.py --state /tmp/smol21/state/in_process/var \
        --variants "trl SFTTrainer, 2 x 4, bf16 autocast" \
        "answer-only loss, 2 x 4, bf16 autocast (conf/smollm2.yaml)"

Reads `base_model`, `chat_template` and `sft_dataset` from the state folder's asset store,
trains `--steps` optimizer steps of `conf/smollm2.yaml`'s training settings with each variant's
changes (through the same `build_sft_trainer` as `qlora_adapter`; `loss: trl` builds trl's
SFTTrainer itself, the peer) and prints a table with tokens/s, the ratio to the first variant
and MFU: 6 x parameters x tokens/s (the usual training-FLOPs estimate, the same numerator for
every variant) over the fp32 matrix-multiply throughput torch reaches on this machine, measured
in the same run. Writes benchmarks/results/bench_training_memory.json (or `--output`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import cast

from llm_assets.storage import atomic_file

ROOT = Path(__file__).resolve().parents[1]
VARIANTS: dict[str, dict[str, object]] = {
    # The memory settings, measured with trl's loss at 4 x 2 (docs/pipeline.md).
    "dropout 0.05, all activations kept": {
        "loss": "trl", "gradient_checkpointing": False, "lora_dropout": 0.05,
        "per_device_train_batch_size": 4, "gradient_accumulation_steps": 2,
    },
    "gradient checkpointing": {
        "loss": "trl", "gradient_checkpointing": True, "lora_dropout": 0.05,
        "per_device_train_batch_size": 4, "gradient_accumulation_steps": 2,
    },
    "LoRA dropout 0": {
        "loss": "trl", "gradient_checkpointing": False, "lora_dropout": 0.0,
        "per_device_train_batch_size": 4, "gradient_accumulation_steps": 2,
    },
    # The same 8 rows per optimizer step, trl's loss against the answer-only loss, in fp32 and
    # in bf16 autocast (training.cpu_bf16; variants without it compute in fp32).
    "trl SFTTrainer, 4 x 2": {
        "loss": "trl", "per_device_train_batch_size": 4, "gradient_accumulation_steps": 2,
    },
    "answer-only loss, 4 x 2": {
        "loss": "answers", "per_device_train_batch_size": 4, "gradient_accumulation_steps": 2,
    },
    "trl SFTTrainer, 2 x 4": {
        "loss": "trl", "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4,
    },
    "answer-only loss, 2 x 4": {
        "loss": "answers", "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4,
    },
    "answer-only loss, 8 x 1": {
        "loss": "answers", "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1,
    },
    "trl SFTTrainer, 2 x 4, bf16 autocast": {
        "loss": "trl", "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4,
        "cpu_bf16": "on",
    },
    "answer-only loss, 2 x 4, bf16 autocast (conf/smollm2.yaml)": {
        "loss": "answers", "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4,
        "cpu_bf16": "on",
    },
    "answer-only loss, 2 x 4, bf16 autocast, no checkpointing": {
        "loss": "answers", "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4,
        "gradient_checkpointing": False, "cpu_bf16": "on",
    },
    # glibc settings against the creeping peak, through its environment variables (the
    # variant's process starts with them).
    "answer-only loss, 2 x 4, bf16 autocast, blocks over 1 MiB mmapped": {
        "loss": "answers", "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4,
        "cpu_bf16": "on", "environment": {"MALLOC_MMAP_THRESHOLD_": str(2**20)},
    },
    "answer-only loss, 2 x 4, bf16 autocast, one malloc arena": {
        "loss": "answers", "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4,
        "cpu_bf16": "on", "environment": {"MALLOC_ARENA_MAX": "1"},
    },
    # Other allocators, preloaded into the variant's process (Debian: libjemalloc2,
    # libtcmalloc-minimal4); the dynamic loader finds them by name.
    "answer-only loss, 2 x 4, bf16 autocast, jemalloc": {
        "loss": "answers", "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4,
        "cpu_bf16": "on", "environment": {"LD_PRELOAD": "libjemalloc.so.2"},
    },
    "answer-only loss, 2 x 4, bf16 autocast, tcmalloc": {
        "loss": "answers", "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4,
        "cpu_bf16": "on", "environment": {"LD_PRELOAD": "libtcmalloc_minimal.so.4"},
    },
    "answer-only loss, 2 x 4, bf16 autocast, tcmalloc, no checkpointing": {
        "loss": "answers", "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4,
        "gradient_checkpointing": False, "cpu_bf16": "on",
        "environment": {"LD_PRELOAD": "libtcmalloc_minimal.so.4"},
    },
    # Part of the recomputation kept (tcmalloc, as the profile):
    # training.gradient_checkpointing_every_n_layers (transformers' every_n_layers) recomputes
    # only every n-th decoder layer. trl's `selective` key (keep attention outputs) fails with
    # a peft_config: its wrapper sits on the PeftModel, the Trainer enables checkpointing on
    # the base model, and torch's checkpoint refuses the key.
    "answer-only loss, 2 x 4, bf16 autocast, tcmalloc, every 2nd layer checkpointed": {
        "loss": "answers", "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4,
        "cpu_bf16": "on", "environment": {"LD_PRELOAD": "libtcmalloc_minimal.so.4"},
        "gradient_checkpointing_every_n_layers": 2,
    },
    "answer-only loss, 2 x 4, bf16 autocast, tcmalloc, every 3rd layer checkpointed": {
        "loss": "answers", "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4,
        "cpu_bf16": "on", "environment": {"LD_PRELOAD": "libtcmalloc_minimal.so.4"},
        "gradient_checkpointing_every_n_layers": 3,
    },
    # A budget of kept activations instead (training.gradient_checkpointing_kept_token_layers):
    # each micro-batch keeps as many layers as 10,240 token-layers allow and recomputes the rest.
    "answer-only loss, 2 x 4, bf16 autocast, tcmalloc, 10,240 token-layers kept": {
        "loss": "answers", "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4,
        "cpu_bf16": "on", "environment": {"LD_PRELOAD": "libtcmalloc_minimal.so.4"},
        "gradient_checkpointing_kept_token_layers": 10240,
    },
    "answer-only loss, 2 x 4, bf16 autocast, jemalloc, no checkpointing": {
        "loss": "answers", "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4,
        "gradient_checkpointing": False, "cpu_bf16": "on",
        "environment": {"LD_PRELOAD": "libjemalloc.so.2"},
    },
    # One row a micro-batch: no padding, half the activations of 2 x 4 kept without
    # checkpointing.
    "answer-only loss, 1 x 8, bf16 autocast": {
        "loss": "answers", "per_device_train_batch_size": 1, "gradient_accumulation_steps": 8,
        "cpu_bf16": "on",
    },
    "answer-only loss, 1 x 8, bf16 autocast, no checkpointing": {
        "loss": "answers", "per_device_train_batch_size": 1, "gradient_accumulation_steps": 8,
        "gradient_checkpointing": False, "cpu_bf16": "on",
    },
    "answer-only loss, 8 x 1, bf16 autocast": {
        "loss": "answers", "per_device_train_batch_size": 8, "gradient_accumulation_steps": 1,
        "cpu_bf16": "on",
    },
    "answer-only loss, 4 x 2, bf16 autocast": {
        "loss": "answers", "per_device_train_batch_size": 4, "gradient_accumulation_steps": 2,
        "cpu_bf16": "on",
    },
}  # fmt: skip


def matmul_flops_per_second(size: int = 2048, repeats: int = 10) -> float:
    """fp32 FLOP/s of a square matrix multiply: what this machine's cores reach in torch."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    started = time.perf_counter()
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * size**3 * repeats / (time.perf_counter() - started)


def one_variant(
    state: Path, profile_path: Path, variant: dict[str, object], steps: int, save_steps: int
) -> dict:
    """Runs in its own process: build the trainer as qlora_adapter does, train `steps`, saving
    a checkpoint every `save_steps` (0: never) as a run does."""
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
    not_training = ("loss", "environment")
    # A variant states what differs from fp32 with every layer recomputed.
    updates = {
        "cpu_bf16": "off",
        "gradient_checkpointing_every_n_layers": 1,
        "gradient_checkpointing_kept_token_layers": None,
        **{key: value for key, value in variant.items() if key not in not_training},
    }
    config = profile.training.model_copy(update=updates)
    tokenizer = load_chat_tokenizer(base, chat_template=template)
    rows_per_step = config.per_device_train_batch_size * config.gradient_accumulation_steps
    train = dataset["train"].select(range(min(len(dataset["train"]), steps * rows_per_step)))
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
            overrides={
                "max_steps": steps,
                "eval_strategy": "no",
                **(
                    {"save_strategy": "steps", "save_steps": save_steps}
                    if save_steps
                    else {"save_strategy": "no"}
                ),
            },
        )
        trainer = build_sft_trainer(
            base, tokenizer, config, args, train, answer_only_loss=variant["loss"] == "answers"
        )
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        threading.Thread(target=sample, daemon=True).start()
        started = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - started
        running = False
    tokens = max(float(e.get("num_tokens", 0)) for e in trainer.state.log_history)
    parameters = sum(p.numel() for p in trainer.model.parameters())
    return {
        "tokens": int(tokens),
        "tokens_per_s": round(tokens / seconds, 1),
        "mfu": round(6 * parameters * tokens / seconds / matmul_flops_per_second(), 4),
        "steps": steps,
        "rows_per_step": rows_per_step,
        "seconds_per_step": round(seconds / steps, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "median_rss_mib": round(sorted(samples)[len(samples) // 2], 1) if samples else None,
        # The creep: what the resident set reached in the first half of the steps.
        "peak_rss_first_half_mib": round(max(samples[: len(samples) // 2]), 1)
        if len(samples) > 1
        else None,
        "rss_after_model_load_mib": round(before, 1),
        "train_loss": round(float(result.training_loss), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--state", type=Path, required=True, help="a materialized state folder")
    parser.add_argument("--profile", type=Path, default=ROOT / "conf" / "smollm2.yaml")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument(
        "--save-steps", type=int, default=0, help="save a checkpoint every N steps (0: never)"
    )
    parser.add_argument(
        "--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="NAME"
    )
    parser.add_argument(
        "--output", type=Path, default=ROOT / "benchmarks/results/bench_training_memory.json"
    )
    parser.add_argument("--variant", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant is not None:
        variant = VARIANTS[args.variant]
        measured = one_variant(args.state, args.profile, variant, args.steps, args.save_steps)
        print(json.dumps(measured))
        return

    results = []
    for name in args.variants:
        command = [sys.executable, __file__, "--state", str(args.state), "--variant", name]
        command += ["--profile", str(args.profile), "--steps", str(args.steps)]
        command += ["--save-steps", str(args.save_steps)]
        extra = VARIANTS[name].get("environment") or {}
        environment = {**os.environ, **cast(dict[str, str], extra)}
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=environment)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(f"variant {name!r} failed")
        measured = json.loads(done.stdout.strip().splitlines()[-1])
        results.append({"variant": name, "settings": VARIANTS[name], **measured})
        print(f"{name}: {measured}", flush=True)

    reference = results[0]
    print(
        f"\n{'variant':<46} {'s/step':>7} {'tokens/s':>9} {'vs first':>9} {'MFU':>6} "
        f"{'peak RSS MiB':>13} {'median MiB':>11} {'loss':>7}"
    )
    for row in results:
        row["tokens_per_s_vs_first"] = round(row["tokens_per_s"] / reference["tokens_per_s"], 3)
        print(
            f"{row['variant']:<46} {row['seconds_per_step']:>7.1f} {row['tokens_per_s']:>9.1f} "
            f"{row['tokens_per_s_vs_first']:>8.2f}x {row['mfu']:>6.3f} "
            f"{row['peak_rss_mib']:>13.0f} {row['median_rss_mib'] or 0:>11.0f} "
            f"{row['train_loss']:>7.4f}"
        )
    report = {
        "command": "python " + shlex.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "profile": str(args.profile.resolve().relative_to(ROOT)),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        },
        "results": results,
    }
    with atomic_file(args.output) as temporary:
        temporary.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
